//! A raw TCP ESC/POS printer on loopback and a decoder of what it received: for tests, benchmarks and demos.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::settings::CodePage;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::escpos::{ESC, GS, encoding, table_number};

/// One connection's bytes: one print job. `first_byte` is when its first byte arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub first_byte: Instant,
}

/// A printer that accepts every connection on `127.0.0.1` and keeps what each one sent.
pub struct EscPosSink {
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EscPosSink {
    /// Listens on `port` (0 for any free one).
    pub async fn start(port: u16) -> std::io::Result<EscPosSink> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let address = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        // One connection at a time, as a raw-port printer takes them: what it keeps is in the order it printed,
        // not in the order concurrent readers happened to finish.
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut first = [0u8; 1];
                if stream.read_exact(&mut first).await.is_err() {
                    continue;
                }
                let first_byte = Instant::now();
                let mut bytes = first.to_vec();
                if stream.read_to_end(&mut bytes).await.is_ok() {
                    let mut all = store.lock().unwrap_or_else(|p| p.into_inner());
                    all.push(Received { bytes, first_byte });
                }
            }
        });
        Ok(EscPosSink {
            address,
            received,
            task,
        })
    }

    /// `tcp://127.0.0.1:PORT`, for a printer's address.
    pub fn printer_address(&self) -> String {
        format!("tcp://{}", self.address)
    }

    /// Every complete job received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for EscPosSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A line as it came out of the printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintedLine {
    pub text: String,
    /// Some of it printed at an enlarged size (`GS !`).
    pub big: bool,
    /// Some of it printed emphasised (`ESC E`).
    pub bold: bool,
    /// The data of a QR code printed on this line (`GS ( k` print), if any.
    pub qr: Option<String>,
}

/// What a stream of ESC/POS printed: the slips between cuts, decoded with the code page it selected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Printed {
    pub code_page: Option<CodePage>,
    pub slips: Vec<Vec<PrintedLine>>,
    /// Text after the last cut (a ticket that was never cut).
    pub uncut: Vec<PrintedLine>,
}

/// The print mode a line is printed in, as `ESC @`, `ESC E` and `GS !` set it.
#[derive(Debug, Clone, Copy, Default)]
struct Mode {
    big: bool,
    bold: bool,
}

/// The QR functions of `GS ( k` (cn 49): model, module size, error correction, store data, print.
const QR_MODEL: u8 = 65;
const QR_SIZE: u8 = 67;
const QR_ERROR_CORRECTION: u8 = 69;
const QR_STORE: u8 = 80;
const QR_PRINT: u8 = 81;

/// Decodes the commands tillwire sends, as a printer would; anything else is an error, so a test notices a
/// malformed stream.
pub fn decode(bytes: &[u8]) -> Result<Printed, String> {
    let mut printed = Printed::default();
    let mut text: Vec<u8> = Vec::new();
    let mut mode = Mode::default();
    let mut line = blank_line(mode);
    // The QR symbol storage: what `GS ( k` store put there, printed by `GS ( k` print.
    let mut qr_stored: Option<String> = None;
    let mut i = 0;
    let arg = |at: usize| bytes.get(at).copied().ok_or("truncated command");
    while i < bytes.len() {
        match bytes[i] {
            ESC => match arg(i + 1)? {
                b'@' => {
                    // Initialise: the default (unmodelled) code table, normal print, empty symbol storage.
                    printed.code_page = None;
                    mode = Mode::default();
                    qr_stored = None;
                    i += 2;
                }
                b't' => {
                    let n = arg(i + 2)?;
                    printed.code_page = [CodePage::Cp866, CodePage::Cp1251]
                        .into_iter()
                        .find(|c| table_number(*c) == n);
                    i += 3;
                }
                b'E' => {
                    mode.bold = arg(i + 2)? & 1 == 1;
                    line.bold |= mode.bold;
                    i += 3;
                }
                // Alignment and feeding do not change the text.
                b'a' | b'd' => i += 3,
                other => return Err(format!("unknown ESC {other:#x} at {i}")),
            },
            GS => match arg(i + 1)? {
                b'!' => {
                    mode.big = arg(i + 2)? != 0;
                    line.big |= mode.big;
                    i += 3;
                }
                b'V' => {
                    // Function A (0, 1, 48, 49) cuts; function B (65, 66) feeds n lines, then cuts.
                    let length = match arg(i + 2)? {
                        0 | 1 | 48 | 49 => 3,
                        65 | 66 => 4,
                        other => return Err(format!("unknown GS V {other} at {i}")),
                    };
                    printed.slips.push(std::mem::take(&mut printed.uncut));
                    i += length;
                }
                b'(' if arg(i + 2)? == b'k' => {
                    let length = usize::from(arg(i + 3)?) | usize::from(arg(i + 4)?) << 8;
                    let body = bytes
                        .get(i + 5..i + 5 + length)
                        .ok_or_else(|| format!("truncated GS ( k at {i}"))?;
                    match body {
                        [49, QR_MODEL, 50 | 51, 0]
                        | [49, QR_SIZE, 1..=16]
                        | [49, QR_ERROR_CORRECTION, 48..=51] => {}
                        [49, QR_STORE, 48, data @ ..] => {
                            let data = String::from_utf8(data.to_vec())
                                .map_err(|_| format!("QR data at {i} is not UTF-8"))?;
                            qr_stored = Some(data);
                        }
                        [49, QR_PRINT, 48] => {
                            let data = qr_stored
                                .clone()
                                .ok_or_else(|| format!("QR printed at {i} with nothing stored"))?;
                            if line.qr.replace(data).is_some() {
                                return Err(format!("two QR codes on one line at {i}"));
                            }
                        }
                        other => return Err(format!("unknown GS ( k {other:?} at {i}")),
                    }
                    i += 5 + length;
                }
                other => return Err(format!("unknown GS {other:#x} at {i}")),
            },
            b'\n' => {
                let code_page = printed
                    .code_page
                    .ok_or("text before a code page was selected")?;
                let (decoded, _) = encoding(code_page).decode_without_bom_handling(&text);
                line.text = decoded.into_owned();
                printed
                    .uncut
                    .push(std::mem::replace(&mut line, blank_line(mode)));
                text.clear();
                i += 1;
            }
            byte if byte < 0x20 => return Err(format!("unexpected control byte {byte:#x} at {i}")),
            byte => {
                text.push(byte);
                i += 1;
            }
        }
    }
    Ok(printed)
}

/// A line about to be printed in `mode`.
fn blank_line(mode: Mode) -> PrintedLine {
    PrintedLine {
        text: String::new(),
        big: mode.big,
        bold: mode.bold,
        qr: None,
    }
}

impl Printed {
    /// The big line of each slip: the queue numbers printed.
    pub fn numbers(&self) -> Vec<String> {
        self.slips
            .iter()
            .filter_map(|slip| slip.iter().find(|l| l.big).map(|l| l.text.clone()))
            .collect()
    }
}
