//! Getting a ticket onto paper: ESC/POS over raw TCP, or a Print-Job to an IPP printer or CUPS queue.

use std::io::{Cursor, Read};
use std::time::Duration;

use ipp::model::{DelimiterTag, StatusCode};
use ipp::operation::IppOperation;
use ipp::operation::builder::IppOperationBuilder;
use ipp::operation::cups::CupsGetPrinters;
use ipp::parser::IppParser;
use ipp::payload::IppPayload;
use ipp::request::IppRequestResponse;
use ipp::value::IppValue;
use tillwire_kitchen::model::PrinterAddress;
use tillwire_platform::config::CodePage;
use tokio::io::AsyncWriteExt;

use crate::ticket::Ticket;
use crate::{escpos, pdf};

/// Why a ticket did not print. Every failure is worth retrying: printers come back, queues get re-created.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PrintError(String);

impl PrintError {
    pub fn new(message: impl Into<String>) -> Self {
        PrintError(message.into())
    }
}

/// How to reach printers: one HTTP client for IPP, the code page for ESC/POS, the per-step timeout.
#[derive(Clone)]
pub struct Drivers {
    http: reqwest::Client,
    code_page: CodePage,
    timeout: Duration,
}

impl Drivers {
    pub fn new(code_page: CodePage, timeout: Duration) -> Self {
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
        }
    }

    /// Prints `ticket`; `title` names the job on IPP printers.
    pub async fn print(
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
    /// does not know it, its queues are listed (CUPS-Get-Printers) and the one whose name matches is used.
    /// Driver-based queues get a PDF; queues that only take raw data get ESC/POS.
    async fn print_ipp(
        &self,
        host: &str,
        port: u16,
        path: &str,
        ticket: &Ticket,
        title: &str,
    ) -> Result<(), PrintError> {
        let server = format!("http://{host}:{port}");
        let mut uri = format!("ipp://{host}:{port}{path}");
        let mut attributes = self.call(&server, &uri, printer_attributes(&uri)?).await?;
        if attributes.header().status_code() == StatusCode::ClientErrorNotFound {
            let wanted = path.rsplit('/').next().unwrap_or_default();
            uri = self.find_queue(&server, wanted).await?;
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
        for group in reply
            .attributes()
            .groups_of(DelimiterTag::PrinterAttributes)
        {
            let name = group.get("printer-name").map(|a| a.value().to_string());
            if name.is_some_and(|n| n.eq_ignore_ascii_case(wanted))
                && let Some(uri) = group.get("printer-uri-supported")
            {
                return Ok(listed(uri.value()).into_iter().next().unwrap_or_default());
            }
        }
        Err(PrintError(format!(
            "{server}: no print queue named {wanted:?}"
        )))
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
