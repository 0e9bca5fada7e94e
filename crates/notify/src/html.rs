//! Text for Telegram's HTML parse mode: escaping what people typed, and cutting a long message into messages
//! Telegram accepts (at most 4,096 visible characters each, counted as Telegram counts them, in UTF-16 units).
//! A message is cut at line ends where it can be, never inside a tag or an entity, and a tag open across the cut
//! is closed before it and opened again after it, so every part is valid HTML on its own.

use tillwire_platform::Text;

/// The most visible characters one message may carry.
pub const MESSAGE_LIMIT: usize = 4096;

/// Escapes text for HTML parse mode: `&`, `<`, `>` and `"` (the last so it may stand in an attribute too).
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A piece of HTML that is never cut.
#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    /// `<b>`, `<a href="…">`: the raw tag and its name.
    Open(&'a str, &'a str),
    /// `</b>`.
    Close(&'a str),
    /// Text, an entity counting as one character, or a line end: the raw text and its visible length.
    Text(&'a str, usize),
    LineEnd,
}

fn tokens(html: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        let (token, used) = match c {
            '<' => match rest.find('>') {
                Some(end) => {
                    let raw = &rest[..=end];
                    let inner = &raw[1..raw.len() - 1];
                    if let Some(name) = inner.strip_prefix('/') {
                        (Token::Close(name.trim()), raw.len())
                    } else {
                        let name = inner.split_whitespace().next().unwrap_or_default();
                        (Token::Open(raw, name), raw.len())
                    }
                }
                None => (Token::Text(&rest[..1], 1), 1),
            },
            '&' => match rest.find(';').filter(|end| *end <= 10) {
                Some(end) => (Token::Text(&rest[..=end], 1), end + 1),
                None => (Token::Text(&rest[..1], 1), 1),
            },
            '\n' => (Token::LineEnd, 1),
            other => (
                Token::Text(&rest[..other.len_utf8()], other.len_utf16()),
                other.len_utf8(),
            ),
        };
        tokens.push(token);
        rest = &rest[used..];
    }
    tokens
}

/// What a chat shows of some HTML: tags dropped, the entities this module writes turned back into characters.
pub fn visible(html: &str) -> String {
    tokens(html)
        .iter()
        .map(|token| match token {
            Token::Text(raw, _) => match *raw {
                "&lt;" => "<",
                "&gt;" => ">",
                "&amp;" => "&",
                "&quot;" => "\"",
                other => other,
            },
            Token::LineEnd => "\n",
            _ => "",
        })
        .collect()
}

/// The tags Telegram's HTML parse mode knows.
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

/// What Telegram would refuse in some HTML (someone's template, say): a tag it does not know, a tag not closed or
/// closed out of order, an `&` that starts no entity. Telegram would refuse the whole message, so it is caught
/// before anything is sent.
pub fn check(html: &str) -> Result<(), Text> {
    let mut open: Vec<String> = Vec::new();
    for token in tokens(html) {
        match token {
            Token::Open(_, name) => {
                let name = name.to_lowercase();
                if !TAGS.contains(&name.as_str()) {
                    return Err(Text::new(
                        format!("Telegram не знает тег <{name}>."),
                        format!("Telegram does not know the tag <{name}>."),
                    ));
                }
                open.push(name);
            }
            Token::Close(name) => {
                let name = name.to_lowercase();
                match open.pop() {
                    Some(top) if top == name => {}
                    Some(top) => {
                        return Err(Text::new(
                            format!("</{name}> закрывает не тот тег: открыт <{top}>."),
                            format!("</{name}> closes the wrong tag: <{top}> is open."),
                        ));
                    }
                    None => {
                        return Err(Text::new(
                            format!("</{name}> без открывающего тега."),
                            format!("</{name}> has no opening tag."),
                        ));
                    }
                }
            }
            Token::Text(raw, _) if raw.starts_with('&') && !is_entity(raw) => {
                return Err(Text::new(
                    "Знак & пишется как &amp;amp;.",
                    "Write & as &amp;amp;.",
                ));
            }
            Token::Text("<", _) => {
                return Err(Text::new(
                    "Знак < без тега пишется как &amp;lt;.",
                    "Write a < that starts no tag as &amp;lt;.",
                ));
            }
            _ => {}
        }
    }
    match open.pop() {
        Some(top) => Err(Text::new(
            format!("Тег <{top}> не закрыт."),
            format!("The tag <{top}> is not closed."),
        )),
        None => Ok(()),
    }
}

/// `&lt;`, `&gt;`, `&amp;`, `&quot;` or a numeric entity: the ones Telegram decodes.
fn is_entity(raw: &str) -> bool {
    let Some(inner) = raw.strip_prefix('&').and_then(|r| r.strip_suffix(';')) else {
        return false;
    };
    match inner.strip_prefix('#') {
        Some(hex) if hex.starts_with(['x', 'X']) => {
            hex.len() > 1 && hex[1..].chars().all(|c| c.is_ascii_hexdigit())
        }
        Some(decimal) => !decimal.is_empty() && decimal.chars().all(|c| c.is_ascii_digit()),
        None => matches!(inner, "lt" | "gt" | "amp" | "quot"),
    }
}

/// Visible length of some HTML, in UTF-16 units (tags count nothing, an entity one).
pub fn visible_len(html: &str) -> usize {
    tokens(html)
        .iter()
        .map(|token| match token {
            Token::Text(_, len) => *len,
            Token::LineEnd => 1,
            _ => 0,
        })
        .sum()
}

/// Cuts `html` into messages of at most `limit` visible characters: at line ends where possible, otherwise at
/// the last space, otherwise between characters; tags open across a cut are closed and opened again.
pub fn split(html: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(16);
    if visible_len(html) <= limit {
        return vec![html.to_owned()];
    }
    let tokens = tokens(html);
    let mut parts = Vec::new();
    let mut start = 0;
    let mut open: Vec<(&str, &str)> = Vec::new();
    while start < tokens.len() {
        // The tags open at the start of this part, to reopen; their closing tags take no visible room.
        let reopened: Vec<(&str, &str)> = open.clone();
        let mut used = 0;
        let mut end = start;
        let mut last_line_end = None;
        let mut last_space = None;
        while end < tokens.len() {
            let width = match &tokens[end] {
                Token::Text(_, len) => *len,
                Token::LineEnd => 1,
                _ => 0,
            };
            if used + width > limit {
                break;
            }
            used += width;
            match &tokens[end] {
                Token::LineEnd => last_line_end = Some(end),
                Token::Text(" ", _) => last_space = Some(end),
                _ => {}
            }
            end += 1;
        }
        // Where this part ends (exclusive) and where the next begins (a line end or space at the cut is dropped).
        let (cut, next) = if end >= tokens.len() {
            (end, end)
        } else if let Some(at) = last_line_end.filter(|at| *at > start) {
            (at, at + 1)
        } else if let Some(at) = last_space.filter(|at| *at > start) {
            (at, at + 1)
        } else {
            (end.max(start + 1), end.max(start + 1))
        };
        let mut part = String::new();
        for (raw, _) in &reopened {
            part.push_str(raw);
        }
        for token in &tokens[start..cut] {
            match token {
                Token::Open(raw, name) => {
                    open.push((raw, name));
                    part.push_str(raw);
                }
                Token::Close(name) => {
                    if let Some(at) = open.iter().rposition(|(_, open_name)| open_name == name) {
                        open.remove(at);
                    }
                    part.push_str("</");
                    part.push_str(name);
                    part.push('>');
                }
                Token::Text(raw, _) => part.push_str(raw),
                Token::LineEnd => part.push('\n'),
            }
        }
        for (_, name) in open.iter().rev() {
            part.push_str("</");
            part.push_str(name);
            part.push('>');
        }
        // Tags opened and closed only in the skipped separator do not exist (a space or a line end).
        start = next;
        if !part.trim().is_empty() {
            parts.push(part);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use tillwire_platform::web::Lang;

    #[test]
    fn check_refuses_what_telegram_refuses() {
        assert_eq!(
            check("<b>Касса</b> · <i>x</i> &lt;&amp;&quot;&#8212;&#x2014;"),
            Ok(())
        );
        assert_eq!(
            check("<a href=\"https://example.org\">link</a>\n<code>1 &gt; 0</code>"),
            Ok(())
        );
        let said = |html: &str| check(html).map_err(|e| e.get(Lang::En).to_owned());
        assert_eq!(
            said("<br>"),
            Err("Telegram does not know the tag <br>.".into())
        );
        assert_eq!(said("<b>open"), Err("The tag <b> is not closed.".into()));
        assert_eq!(
            said("<b><i>x</b></i>"),
            Err("</b> closes the wrong tag: <i> is open.".into())
        );
        assert_eq!(said("x</b>"), Err("</b> has no opening tag.".into()));
        assert_eq!(said("Fish & chips"), Err("Write & as &amp;amp;.".into()));
        assert_eq!(said("&nbsp;"), Err("Write & as &amp;amp;.".into()));
        assert_eq!(
            said("1 < 2"),
            Err("Write a < that starts no tag as &amp;lt;.".into())
        );
        assert!(
            check("<B>upper</B>").is_ok(),
            "tags are compared lower-cased"
        );
    }

    #[test]
    fn names_with_markup_are_escaped() {
        assert_eq!(
            escape(r#"Кафе "Рога & Копыта" <Север>"#),
            "Кафе &quot;Рога &amp; Копыта&quot; &lt;Север&gt;"
        );
    }

    #[test]
    fn what_a_chat_shows_is_the_text_without_markup() {
        assert_eq!(
            visible("<b>Касса &lt;1&gt;</b> · Рога &amp; Копыта\n<code>&quot;x&quot;</code>"),
            "Касса <1> · Рога & Копыта\n\"x\""
        );
    }

    #[test]
    fn a_short_message_stays_whole() {
        assert_eq!(
            split("<b>Касса 1</b>: нет бумаги", MESSAGE_LIMIT),
            vec!["<b>Касса 1</b>: нет бумаги"]
        );
        assert_eq!(
            visible_len("<b>a&amp;b</b>\n😀"),
            6,
            "an entity is one, an emoji two, a line end one"
        );
    }

    #[test]
    fn a_long_summary_is_cut_at_line_ends_within_the_limit() {
        let lines: Vec<String> = (0..400)
            .map(|n| format!("<b>Пиццерия {n}</b>: 12 заказов, среднее 7 мин &amp; p90 11 мин"))
            .collect();
        let html = lines.join("\n");
        assert!(visible_len(&html) > 10_000);
        let parts = split(&html, MESSAGE_LIMIT);
        assert!(parts.len() >= 3, "{} parts", parts.len());
        for part in &parts {
            assert!(visible_len(part) <= MESSAGE_LIMIT);
            assert!(
                part.starts_with("<b>Пиццерия"),
                "a part starts at a line: {}",
                &part[..40]
            );
            assert!(part.ends_with("мин"), "a part ends at a line end");
        }
        let rejoined = parts.join("\n");
        assert_eq!(rejoined, html, "nothing lost or added");
    }

    #[test]
    fn a_tag_open_across_the_cut_is_closed_and_reopened() {
        let body: String = (0..30).map(|n| format!("строка {n}\n")).collect();
        let html = format!("<blockquote>{body}</blockquote> конец");
        let parts = split(&html, 100);
        assert!(parts.len() > 2);
        for part in &parts[..parts.len() - 1] {
            assert!(
                part.starts_with("<blockquote>") && part.ends_with("</blockquote>"),
                "{part:?}"
            );
            assert!(visible_len(part) <= 100);
        }
    }

    #[test]
    fn a_line_longer_than_a_message_is_cut_at_a_space_and_never_inside_an_entity() {
        let word = "слово&amp;знак ";
        let html = word.repeat(1000);
        for part in split(&html, MESSAGE_LIMIT) {
            assert!(visible_len(&part) <= MESSAGE_LIMIT);
            assert!(
                !part.ends_with('&') && !part.contains("&amp&") && part.starts_with("слово"),
                "{}",
                &part[part.len() - 20..]
            );
        }
        let no_spaces = "я".repeat(5000);
        let parts = split(&no_spaces, MESSAGE_LIMIT);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            vec![4096, 904]
        );
    }
}
