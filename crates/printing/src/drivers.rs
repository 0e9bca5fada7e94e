//! Getting a ticket onto paper: ESC/POS over raw TCP, or a Print-Job to an IPP printer or CUPS queue.

use std::io::{Cursor, Read};
use std::time::Duration;

use crate::settings::CodePage;
use ipp::model::{DelimiterTag, StatusCode};
use ipp::operation::IppOperation;
use ipp::operation::builder::IppOperationBuilder;
use ipp::operation::cups::CupsGetPrinters;
use ipp::parser::IppParser;
use ipp::payload::IppPayload;
use ipp::request::IppRequestResponse;
use ipp::value::IppValue;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use tillwire_kitchen::model::PrinterAddress;
use tokio::io::AsyncWriteExt;

use crate::ticket::Ticket;
use crate::{escpos, pdf, same_name};

/// The longest one print attempt may take, all its steps together (for IPP up to four HTTP requests). It stays
/// under the job lease: a job still printing when its lease runs out is handed to another worker, which would
/// print the ticket again.
pub const ATTEMPT_DEADLINE: Duration =
    tillwire_platform::jobs::LEASE.saturating_sub(Duration::from_secs(15));

/// What is percent-encoded when a configured IPP path becomes a URI: controls, non-ASCII (a CUPS queue may have
/// a Cyrillic name) and the characters a URI may not hold. `%` is kept, so an already encoded path is unchanged.
const NOT_IN_URI: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Why a ticket did not print. Every failure is worth retrying: printers come back, queues get re-created.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PrintError(String);

impl PrintError {
    pub fn new(message: impl Into<String>) -> Self {
        PrintError(message.into())
    }
}

/// How to reach printers: one HTTP client for IPP, the code page for ESC/POS, the per-step timeout and the
/// deadline of a whole attempt.
#[derive(Clone)]
pub struct Drivers {
    http: reqwest::Client,
    code_page: CodePage,
    timeout: Duration,
    deadline: Duration,
}

impl Drivers {
    /// `timeout` bounds each connect and write (an HTTP request gets twice that); `deadline` bounds the whole
    /// attempt (see [`ATTEMPT_DEADLINE`]).
    pub fn new(code_page: CodePage, timeout: Duration, deadline: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout * 2)
            .no_proxy()
            .build()
            .expect("an HTTP client without TLS builds");
        Drivers {
            http,
            code_page,
            timeout,
            deadline,
        }
    }

    /// Prints `ticket`; `title` names the job on IPP printers. Gives up once the deadline has passed, whichever
    /// step it is in.
    pub async fn print(
        &self,
        address: &PrinterAddress,
        ticket: &Ticket,
        title: &str,
    ) -> Result<(), PrintError> {
        tokio::time::timeout(self.deadline, self.attempt(address, ticket, title))
            .await
            .unwrap_or_else(|_| {
                Err(PrintError(format!(
                    "{address}: the attempt did not finish within {} s",
                    self.deadline.as_secs_f32()
                )))
            })
    }

    async fn attempt(
        &self,
        address: &PrinterAddress,
        ticket: &Ticket,
        title: &str,
    ) -> Result<(), PrintError> {
        match address {
            PrinterAddress::Tcp { host, port } => {
                self.send_raw(host, *port, &escpos::encode(ticket, self.code_page))
                    .await
            }
            PrinterAddress::Ipp { host, port, path } => {
                self.print_ipp(host, *port, path, ticket, title).await
            }
        }
    }

    async fn send_raw(&self, host: &str, port: u16, bytes: &[u8]) -> Result<(), PrintError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let failed = |step: &str, error: &dyn std::fmt::Display| {
            PrintError(format!("{host}:{port}: {step}: {error}"))
        };
        let mut stream =
            tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect((host, port)))
                .await
                .map_err(|e| failed("connect", &e))?
                .map_err(|e| failed("connect", &e))?;
        tokio::time::timeout(self.timeout, async {
            stream.write_all(bytes).await?;
            stream.shutdown().await
        })
        .await
        .map_err(|e| failed("write", &e))?
        .map_err(|e| failed("write", &e))
    }

    /// ELQ chose the CUPS queue by name, case-insensitively. The URI is tried as written; when the server
    /// does not know it, its queues are listed (CUPS-Get-Printers) and the one whose name matches the URI's
    /// last segment is used (see [`queue_uri`]). Driver-based queues get a PDF; queues that only take raw data
    /// get ESC/POS.
    async fn print_ipp(
        &self,
        host: &str,
        port: u16,
        path: &str,
        ticket: &Ticket,
        title: &str,
    ) -> Result<(), PrintError> {
        let server = format!("http://{host}:{port}");
        let mut uri = format!(
            "ipp://{host}:{port}{}",
            utf8_percent_encode(path, NOT_IN_URI)
        );
        let mut attributes = self.call(&server, &uri, printer_attributes(&uri)?).await?;
        if attributes.header().status_code() == StatusCode::ClientErrorNotFound {
            uri = self.find_queue(&server, &last_segment(path)).await?;
            attributes = self.call(&server, &uri, printer_attributes(&uri)?).await?;
        }
        ensure_success(&attributes, "Get-Printer-Attributes")?;
        let formats = values(&attributes, "document-format-supported");
        let supports = |format: &str| formats.iter().any(|f| f == format);
        let (format, document) = if supports("application/pdf") {
            ("application/pdf", pdf::render(ticket))
        } else {
            // A raw queue: name the data raw where the printer knows the type, so it is not sniffed.
            let raw = if supports("application/vnd.cups-raw") {
                "application/vnd.cups-raw"
            } else {
                "application/octet-stream"
            };
            (raw, escpos::encode(ticket, self.code_page))
        };
        let job = IppOperationBuilder::print_job(
            parse_uri(&uri)?,
            IppPayload::new(Cursor::new(document)),
        )
        .user_name("tillwire")
        .job_title(title)
        .document_format(format)
        .build()
        .map_err(|e| PrintError(format!("{uri}: {e}")))?;
        let reply = self.call(&server, &uri, job.into_ipp_request()).await?;
        ensure_success(&reply, "Print-Job")
    }

    async fn find_queue(&self, server: &str, wanted: &str) -> Result<String, PrintError> {
        let reply = self
            .call(server, server, CupsGetPrinters::new().into_ipp_request())
            .await?;
        ensure_success(&reply, "CUPS-Get-Printers")?;
        queue_uri(&reply, wanted)
            .ok_or_else(|| PrintError(format!("{server}: no print queue named {wanted:?}")))
    }

    /// Sends one IPP request to the HTTP path of `uri` on `server`.
    async fn call(
        &self,
        server: &str,
        uri: &str,
        request: IppRequestResponse,
    ) -> Result<IppRequestResponse, PrintError> {
        let url = format!("{server}{}", path_of(uri));
        let mut body = Vec::new();
        request
            .into_read()
            .read_to_end(&mut body)
            .map_err(|e| PrintError(format!("{url}: {e}")))?;
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/ipp")
            .body(body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| PrintError(format!("{url}: {e}")))?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| PrintError(format!("{url}: {e}")))?;
        IppParser::new(Cursor::new(bytes))
            .parse()
            .map_err(|e| PrintError(format!("{url}: not an IPP reply: {e}")))
    }
}

/// The URI of the queue named `wanted` in a CUPS-Get-Printers reply, ignoring case in any script. A queue's
/// name is its `printer-name`; only a queue listed without one is known by the last segment of its URI.
pub fn queue_uri(reply: &IppRequestResponse, wanted: &str) -> Option<String> {
    reply
        .attributes()
        .groups_of(DelimiterTag::PrinterAttributes)
        .find_map(|queue| {
            let uri = listed(queue.get("printer-uri-supported")?.value())
                .into_iter()
                .next()?;
            let name = match queue.get("printer-name").map(|a| a.value()) {
                Some(IppValue::NameWithLanguage { name, .. }) => name.to_string(),
                Some(other) => other.to_string(),
                None => last_segment(&uri),
            };
            same_name(&name, wanted).then_some(uri)
        })
}

/// The last segment of a path or URI, percent-decoded: `/printers/%D0%9A%D1%83%D1%85%D0%BD%D1%8F` → `Кухня`.
fn last_segment(path: &str) -> String {
    let segment = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn printer_attributes(uri: &str) -> Result<IppRequestResponse, PrintError> {
    IppOperationBuilder::get_printer_attributes(parse_uri(uri)?)
        .attributes(["printer-name", "document-format-supported"])
        .build()
        .map(IppOperation::into_ipp_request)
        .map_err(|e| PrintError(format!("{uri}: {e}")))
}

fn parse_uri(uri: &str) -> Result<http::Uri, PrintError> {
    uri.parse().map_err(|e| PrintError(format!("{uri}: {e}")))
}

/// The path of an `ipp://host:port/path` URI, where its HTTP request goes.
fn path_of(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    rest.find('/').map_or("/", |i| &rest[i..])
}

fn ensure_success(reply: &IppRequestResponse, operation: &str) -> Result<(), PrintError> {
    let status = reply.header().status_code();
    if status.is_success() {
        Ok(())
    } else {
        Err(PrintError(format!("{operation}: {status}")))
    }
}

/// The values of a possibly multi-valued attribute, as text.
fn listed(value: &IppValue) -> Vec<String> {
    match value {
        IppValue::Array(values) => values.iter().map(ToString::to_string).collect(),
        one => vec![one.to_string()],
    }
}

/// Every value of a printer attribute in a reply.
fn values(reply: &IppRequestResponse, name: &str) -> Vec<String> {
    reply
        .attributes()
        .groups_of(DelimiterTag::PrinterAttributes)
        .filter_map(|g| g.get(name))
        .flat_map(|a| listed(a.value()))
        .collect()
}

#[cfg(test)]
mod tests {
    use ipp::attribute::{IppAttribute, IppAttributeGroup};
    use ipp::model::IppVersion;

    use super::*;
    use crate::ticket::Paper;

    /// A CUPS-Get-Printers reply listing `queues` (name, URI), encoded as a server sends it and parsed back.
    fn cups_printers(queues: &[(Option<IppValue>, &str)]) -> IppRequestResponse {
        let mut reply =
            IppRequestResponse::new_response(IppVersion::v2_0(), StatusCode::SuccessfulOk, 1)
                .unwrap();
        for (name, uri) in queues {
            let mut group = IppAttributeGroup::new(DelimiterTag::PrinterAttributes);
            let attributes = group.attributes_mut();
            if let Some(name) = name {
                attributes.push(IppAttribute::with_name("printer-name", name.clone()).unwrap());
            }
            let uri = IppValue::Uri(uri.to_string().try_into().unwrap());
            attributes.push(IppAttribute::with_name("printer-uri-supported", uri).unwrap());
            reply.attributes_mut().groups_mut().push(group);
        }
        let bytes = reply.to_bytes();
        IppParser::new(Cursor::new(bytes)).parse().unwrap()
    }

    fn name(text: &str) -> Option<IppValue> {
        Some(IppValue::NameWithoutLanguage(
            text.to_owned().try_into().unwrap(),
        ))
    }

    #[test]
    fn the_queue_is_found_by_printer_name_ignoring_case_in_any_script() {
        let reply = cups_printers(&[
            (name("Bar"), "ipp://cups:631/printers/Bar"),
            // The URI says "Кухня" but the queue's name is "Зал": the name decides.
            (name("Зал"), "ipp://cups:631/printers/Кухня-old"),
            (
                Some(IppValue::NameWithLanguage {
                    language: "ru".to_owned().try_into().unwrap(),
                    name: "Кухня".to_owned().try_into().unwrap(),
                }),
                "ipp://cups:631/printers/%D0%9A%D1%83%D1%85%D0%BD%D1%8F",
            ),
            (name("ELLIX50"), "ipp://cups:631/printers/ELLIX50"),
        ]);
        assert_eq!(
            queue_uri(&reply, "кУХНЯ").as_deref(),
            Some("ipp://cups:631/printers/%D0%9A%D1%83%D1%85%D0%BD%D1%8F")
        );
        assert_eq!(
            queue_uri(&reply, "ellix50").as_deref(),
            Some("ipp://cups:631/printers/ELLIX50")
        );
        assert_eq!(queue_uri(&reply, "кухня-old"), None, "not by the URI");
        assert_eq!(queue_uri(&reply, "Кухн"), None, "the whole name");
    }

    #[test]
    fn a_queue_without_a_name_is_known_by_its_uri() {
        let reply = cups_printers(&[
            (name("Bar"), "ipp://cups:631/printers/Bar"),
            (
                None,
                "ipp://cups:631/printers/%D0%9A%D1%83%D1%85%D0%BD%D1%8F",
            ),
        ]);
        assert_eq!(
            queue_uri(&reply, "КУХНЯ").as_deref(),
            Some("ipp://cups:631/printers/%D0%9A%D1%83%D1%85%D0%BD%D1%8F")
        );
    }

    #[test]
    fn configured_paths_are_matched_decoded() {
        assert_eq!(last_segment("/printers/Кухня"), "Кухня");
        assert_eq!(
            last_segment("/printers/%D0%9A%D1%83%D1%85%D0%BD%D1%8F/"),
            "Кухня"
        );
        assert_eq!(
            utf8_percent_encode("/printers/Кухня", NOT_IN_URI).to_string(),
            "/printers/%D0%9A%D1%83%D1%85%D0%BD%D1%8F"
        );
        assert_eq!(
            utf8_percent_encode("/printers/%D0%9A", NOT_IN_URI).to_string(),
            "/printers/%D0%9A",
            "an encoded path stays as it is"
        );
    }

    /// An IPP printer that takes the request and never answers: the attempt ends at the deadline, long before
    /// the HTTP timeouts (30 s to connect, 60 s per request) would end it.
    #[tokio::test]
    async fn an_attempt_ends_at_its_deadline() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let drivers = Drivers::new(
            CodePage::Cp866,
            Duration::from_secs(30),
            Duration::from_secs(1),
        );
        let address = PrinterAddress::parse(&format!("ipp://127.0.0.1:{port}/ipp/print"))
            .unwrap()
            .unwrap();
        let paper = Paper {
            width_mm: 57,
            height_mm: 120,
        };
        let error = drivers
            .print(&address, &Ticket::test_page("Кухня", "now", paper), "test")
            .await
            .expect_err("nobody answers");
        assert_eq!(
            error.to_string(),
            format!("ipp://127.0.0.1:{port}/ipp/print: the attempt did not finish within 1 s")
        );
        silent.abort();
    }
}
