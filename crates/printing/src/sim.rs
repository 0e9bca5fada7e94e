//! A raw TCP ESC/POS printer on loopback and a decoder of what it received: for tests, benchmarks and demos.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tillwire_platform::config::CodePage;
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
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut first = [0u8; 1];
                    if stream.read_exact(&mut first).await.is_err() {
                        return;
                    }
                    let first_byte = Instant::now();
                    let mut bytes = first.to_vec();
                    if stream.read_to_end(&mut bytes).await.is_ok() {
                        let mut all = store.lock().unwrap_or_else(|p| p.into_inner());
                        all.push(Received { bytes, first_byte });
                    }
                });
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
    /// Printed bold at double size.
    pub big: bool,
}

/// What a stream of ESC/POS printed: the slips between cuts, decoded with the code page it selected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Printed {
    pub code_page: Option<CodePage>,
    pub slips: Vec<Vec<PrintedLine>>,
    /// Text after the last cut (a ticket that was never cut).
    pub uncut: Vec<PrintedLine>,
    pub qr_codes: Vec<String>,
}

/// Decodes the commands tillwire sends; anything else is an error, so a test notices a malformed stream.
pub fn decode(bytes: &[u8]) -> Result<Printed, String> {
    let mut printed = Printed::default();
    let mut line: Vec<u8> = Vec::new();
    let mut big = false;
    let mut big_in_line = false;
    let mut i = 0;
    let arg = |at: usize| bytes.get(at).copied().ok_or("truncated command");
    while i < bytes.len() {
        match bytes[i] {
            ESC => {
                let command = arg(i + 1)?;
                match command {
                    b'@' => i += 2,
                    b't' => {
                        let n = arg(i + 2)?;
                        printed.code_page = [CodePage::Cp866, CodePage::Cp1251]
                            .into_iter()
                            .find(|c| table_number(*c) == n);
                        i += 3;
                    }
                    // Alignment, bold and feeding do not change the text.
                    b'a' | b'E' | b'd' => i += 3,
                    other => return Err(format!("unknown ESC {other:#x} at {i}")),
                }
            }
            GS => match arg(i + 1)? {
                b'!' => {
                    big = arg(i + 2)? != 0;
                    big_in_line |= big;
                    i += 3;
                }
                b'V' => {
                    printed.slips.push(std::mem::take(&mut printed.uncut));
                    i += 3;
                }
                b'(' => {
                    let length = usize::from(arg(i + 3)?) | usize::from(arg(i + 4)?) << 8;
                    let body = bytes.get(i + 5..i + 5 + length).ok_or("truncated GS ( k")?;
                    if body.starts_with(&[49, 80, 48]) {
                        printed
                            .qr_codes
                            .push(String::from_utf8_lossy(&body[3..]).into_owned());
                    }
                    i += 5 + length;
                }
                other => return Err(format!("unknown GS {other:#x} at {i}")),
            },
            b'\n' => {
                let code_page = printed
                    .code_page
                    .ok_or("text before a code page was selected")?;
                let (text, _) = encoding(code_page).decode_without_bom_handling(&line);
                printed.uncut.push(PrintedLine {
                    text: text.into_owned(),
                    big: big_in_line,
                });
                line.clear();
                big_in_line = big;
                i += 1;
            }
            byte if byte < 0x20 => return Err(format!("unexpected control byte {byte:#x} at {i}")),
            byte => {
                line.push(byte);
                i += 1;
            }
        }
    }
    Ok(printed)
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
