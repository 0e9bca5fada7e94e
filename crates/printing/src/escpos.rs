//! ESC/POS: the byte stream a thermal receipt printer understands, for raw TCP (port 9100) and raw CUPS queues.

use crate::settings::CodePage;

use crate::ticket::{Line, Ticket, centered};

pub const ESC: u8 = 0x1b;
pub const GS: u8 = 0x1d;
const LF: u8 = b'\n';
/// Lines fed before a cut so the last line clears the cutter.
const FEED_BEFORE_CUT: u8 = 4;

/// The `ESC t n` table number of a code page (Epson's numbering, which most clones follow).
pub fn table_number(code_page: CodePage) -> u8 {
    match code_page {
        CodePage::Cp866 => 17,
        CodePage::Cp1251 => 46,
    }
}

/// The `encoding_rs` table of a code page.
pub fn encoding(code_page: CodePage) -> &'static encoding_rs::Encoding {
    match code_page {
        CodePage::Cp866 => encoding_rs::IBM866,
        CodePage::Cp1251 => encoding_rs::WINDOWS_1251,
    }
}

/// Text in the printer's code page; a character it lacks prints as `?` rather than as an HTML escape.
pub fn encode_text(text: &str, code_page: CodePage) -> Vec<u8> {
    let encoding = encoding(code_page);
    let mut bytes = Vec::with_capacity(text.len());
    let mut buffer = [0u8; 4];
    for ch in text.chars() {
        let (encoded, _, unmappable) = encoding.encode(ch.encode_utf8(&mut buffer));
        bytes.extend_from_slice(if unmappable { b"?" } else { &encoded });
    }
    bytes
}

/// The whole ticket: initialise, select the code page, every slip followed by a feed and a partial cut.
pub fn encode(ticket: &Ticket, code_page: CodePage) -> Vec<u8> {
    let columns = ticket.paper.columns();
    let mut out = vec![ESC, b'@', ESC, b't', table_number(code_page)];
    for slip in &ticket.slips {
        for line in &slip.lines {
            match line {
                Line::Text(text) => out.extend(encode_text(text, code_page)),
                Line::Centered(text) => {
                    out.extend(encode_text(&centered(text, columns), code_page))
                }
                Line::Big(text) => {
                    // The printer centres it: double width halves the columns.
                    out.extend([ESC, b'a', 1, ESC, b'E', 1, GS, b'!', 0x11]);
                    out.extend(encode_text(text, code_page));
                    out.extend([GS, b'!', 0, ESC, b'E', 0, ESC, b'a', 0]);
                }
                Line::Blank => {}
                Line::Rule => out.extend(std::iter::repeat_n(b'-', columns)),
                Line::Qr(text) => {
                    out.extend([ESC, b'a', 1]);
                    out.extend(qr(text.as_bytes()));
                    out.extend([ESC, b'a', 0]);
                }
            }
            out.push(LF);
        }
        out.extend([ESC, b'd', FEED_BEFORE_CUT, GS, b'V', 1]);
    }
    out
}

/// `GS ( k`: QR model 2, module size 6, error correction M, store the data, print it.
fn qr(data: &[u8]) -> Vec<u8> {
    let stored = u16::try_from(data.len() + 3)
        .unwrap_or(u16::MAX)
        .to_le_bytes();
    let mut out = vec![GS, b'(', b'k', 4, 0, 49, 65, 50, 0];
    out.extend([GS, b'(', b'k', 3, 0, 49, 67, 6]);
    out.extend([GS, b'(', b'k', 3, 0, 49, 69, 49]);
    out.extend([GS, b'(', b'k', stored[0], stored[1], 49, 80, 48]);
    out.extend(data);
    out.extend([GS, b'(', b'k', 3, 0, 49, 81, 48]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyrillic_and_the_numero_sign_are_single_bytes() {
        assert_eq!(encode_text("Аа№", CodePage::Cp866), [0x80, 0xa0, 0xfc]);
        assert_eq!(encode_text("Аа№", CodePage::Cp1251), [0xc0, 0xe0, 0xb9]);
        assert_eq!(encode_text("a€b", CodePage::Cp866), *b"a?b");
    }
}
