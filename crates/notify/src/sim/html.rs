//! The Bot API's HTML parse mode (https://core.telegram.org/bots/api#html-style), checked the way the server
//! checks it: only the supported tags, properly nested and closed, and only `&lt; &gt; &amp; &quot;` and
//! numeric entities. The error texts follow the server's (`Unsupported start tag "br" at byte offset 12`,
//! `Can't find end tag corresponding to start tag "b"`, …); offsets are bytes of the raw text.

/// Tags the server accepts (compared lower-cased, as the server does).
const TAGS: [&str; 16] = [
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
];

/// The visible text of `raw` (entities decoded, tags removed), or what the server would say is wrong with it
/// (the part after `can't parse entities: `). With `strict_ampersand`, a `&` that does not start one of the
/// supported entities is refused, as the documentation demands ("must be replaced"); without, it is kept as
/// text.
pub fn visible_text(raw: &str, strict_ampersand: bool) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut open: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'&' => match entity(&raw[i..]) {
                Some((decoded, length)) => {
                    out.push(decoded);
                    i += length;
                }
                None if strict_ampersand => {
                    return Err(format!(
                        "Unsupported HTML entity or unescaped \"&\" at byte offset {i}"
                    ));
                }
                None => {
                    out.push('&');
                    i += 1;
                }
            },
            b'<' => i = tag(raw, i, &mut open)?,
            _ => {
                let c = raw[i..].chars().next().unwrap_or_default();
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    match open.last() {
        Some(name) => Err(format!(
            "Can't find end tag corresponding to start tag \"{name}\""
        )),
        None => Ok(out),
    }
}

/// `&lt;`, `&gt;`, `&amp;`, `&quot;`, `&#NNN;` or `&#xHH;` at the start of `text`: the character and the
/// entity's length in bytes.
fn entity(text: &str) -> Option<(char, usize)> {
    let end = text.find(';')?;
    let name = &text[1..end];
    let decoded = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) if !hex.is_empty() && hex.len() <= 8 => {
                    u32::from_str_radix(hex, 16).ok()?
                }
                Some(_) => return None,
                None if !number.is_empty()
                    && number.len() <= 10
                    && number.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    number.parse().ok()?
                }
                None => return None,
            };
            if code == 0 {
                return None;
            }
            char::from_u32(code)?
        }
    };
    Some((decoded, end + 1))
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// The tag starting at `begin` (a `<`): checks it, opens or closes it, and returns the offset after it.
fn tag(raw: &str, begin: usize, open: &mut Vec<String>) -> Result<usize, String> {
    let bytes = raw.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let mut i = begin + 1;
    if at(i) == Some(b'/') {
        if open.is_empty() {
            return Err(format!("Unexpected end tag at byte offset {begin}"));
        }
        let start = i + 1;
        i = start;
        while at(i).is_some_and(|b| !is_space(b) && b != b'>') {
            i += 1;
        }
        let name = raw[start..i].to_ascii_lowercase();
        while at(i).is_some_and(is_space) {
            i += 1;
        }
        if at(i) != Some(b'>') {
            return Err(format!("Unclosed end tag at byte offset {begin}"));
        }
        let expected = open.pop().unwrap_or_default();
        if !name.is_empty() && name != expected {
            return Err(format!(
                "Unmatched end tag at byte offset {begin}, expected \"</{expected}>\", found \"</{name}>\""
            ));
        }
        return Ok(i + 1);
    }
    let start = i;
    while at(i).is_some_and(|b| !is_space(b) && b != b'>') {
        i += 1;
    }
    if at(i).is_none() {
        return Err(format!("Unclosed start tag at byte offset {begin}"));
    }
    let name = raw[start..i].to_ascii_lowercase();
    if !TAGS.contains(&name.as_str()) {
        return Err(format!(
            "Unsupported start tag \"{name}\" at byte offset {begin}"
        ));
    }
    let mut class = None;
    loop {
        while at(i).is_some_and(is_space) {
            i += 1;
        }
        match at(i) {
            None => return Err(format!("Unclosed start tag at byte offset {begin}")),
            Some(b'>') => break,
            Some(_) => {}
        }
        let attribute_start = i;
        while at(i).is_some_and(|b| !is_space(b) && b != b'=' && b != b'>') {
            i += 1;
        }
        let attribute = raw[attribute_start..i].to_ascii_lowercase();
        if attribute.is_empty() {
            return Err(format!(
                "Empty attribute name in the tag \"{name}\" at byte offset {begin}"
            ));
        }
        while at(i).is_some_and(is_space) {
            i += 1;
        }
        if at(i) != Some(b'=') {
            // `<blockquote expandable>` is the one documented attribute without a value.
            if name == "blockquote" && attribute == "expandable" {
                continue;
            }
            return Err(format!(
                "Expected equal sign in declaration of an attribute of the tag \"{name}\" at byte offset {begin}"
            ));
        }
        i += 1;
        while at(i).is_some_and(is_space) {
            i += 1;
        }
        let value = match at(i) {
            None => return Err(format!("Unclosed start tag at byte offset {begin}")),
            Some(quote @ (b'"' | b'\'')) => {
                let value_start = i + 1;
                i = value_start;
                while at(i).is_some_and(|b| b != quote) {
                    i += 1;
                }
                if at(i).is_none() {
                    return Err(format!("Unclosed start tag at byte offset {begin}"));
                }
                i += 1;
                &raw[value_start..i - 1]
            }
            Some(_) => {
                let value_start = i;
                while at(i).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
                    i += 1;
                }
                &raw[value_start..i]
            }
        };
        if name == "span" && attribute == "class" {
            class = Some(value.to_owned());
        }
    }
    if name == "span" && class.as_deref() != Some("tg-spoiler") {
        return Err(format!(
            "Tag \"span\" must have class \"tg-spoiler\" at byte offset {begin}"
        ));
    }
    open.push(name);
    Ok(i + 1)
}

#[cfg(test)]
mod tests {
    use super::visible_text;

    #[test]
    fn supported_tags_and_entities_leave_the_visible_text() {
        let raw = "<b>bold <i>both</i></b> <a href=\"https://x.test/?a=1&amp;b=2\">link</a> &lt;&gt;&amp;&quot; &#65;&#x42; <span class=\"tg-spoiler\">s</span> <pre><code class=\"language-rust\">x</code></pre> <blockquote expandable>q</blockquote>";
        assert_eq!(
            visible_text(raw, true).unwrap(),
            "bold both link <>&\" AB s x q"
        );
    }

    #[test]
    fn errors_name_the_tag_and_byte_offset() {
        let cases = [
            ("a <br> b", "Unsupported start tag \"br\" at byte offset 2"),
            ("1 < 2", "Unsupported start tag \"\" at byte offset 2"),
            (
                "<b>x",
                "Can't find end tag corresponding to start tag \"b\"",
            ),
            (
                "<b><i>x</b></i>",
                "Unmatched end tag at byte offset 7, expected \"</i>\", found \"</b>\"",
            ),
            ("x</b>", "Unexpected end tag at byte offset 1"),
            ("<b", "Unclosed start tag at byte offset 0"),
            (
                "<span>x</span>",
                "Tag \"span\" must have class \"tg-spoiler\" at byte offset 0",
            ),
            (
                "AT&T",
                "Unsupported HTML entity or unescaped \"&\" at byte offset 2",
            ),
            (
                "&nbsp;",
                "Unsupported HTML entity or unescaped \"&\" at byte offset 0",
            ),
        ];
        for (raw, error) in cases {
            assert_eq!(visible_text(raw, true), Err(error.to_owned()), "{raw}");
        }
        assert_eq!(visible_text("AT&T", false).unwrap(), "AT&T");
    }
}
