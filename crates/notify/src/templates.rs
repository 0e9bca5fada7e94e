//! What each kind of message says, per language: a template of Telegram HTML with `{name}` placeholders. Every
//! message has a built-in template in Russian and English; an admin may replace either on `/admin/notify/templates/`
//! (checked against Telegram's HTML rules with sample values before it is kept, and previewed). Values are
//! escaped as they go in, so a register called `<1> & 2` cannot break a message; a line whose placeholders all
//! came out empty is left out (a printer error that is not there takes its line with it).

use std::collections::HashMap;

use tillwire_platform::web::Lang;
use tillwire_platform::{HttpError, Store, Text, now_ms, read, write};

use crate::html::{check, escape};

/// A word or sentence in both languages, fixed at compile time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Words {
    pub ru: &'static str,
    pub en: &'static str,
}

impl Words {
    pub const fn new(ru: &'static str, en: &'static str) -> Self {
        Words { ru, en }
    }

    pub fn get(&self, lang: Lang) -> &'static str {
        lang.pick(self.ru, self.en)
    }
}

/// A placeholder: its name, what it holds, and a value for previews.
#[derive(Debug)]
pub struct Variable {
    pub name: &'static str,
    pub about: Words,
    pub sample: Words,
}

const fn var(name: &'static str, about: Words, sample: Words) -> Variable {
    Variable {
        name,
        about,
        sample,
    }
}

/// One kind of message.
#[derive(Debug)]
pub struct Template {
    /// Its key in the database and on the page.
    pub key: &'static str,
    /// The directory's report type that routes it.
    pub report_type: &'static str,
    pub title: Words,
    pub variables: &'static [Variable],
    /// The built-in text.
    pub default: Words,
}

impl Template {
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// The sample values, for a preview.
    pub fn samples(&self, lang: Lang) -> Vec<(&'static str, String)> {
        self.variables
            .iter()
            .map(|v| (v.name, v.sample.get(lang).to_owned()))
            .collect()
    }
}

pub const REGISTER_INCIDENTS: &str = "REGISTER_INCIDENTS";
pub const PRINTER_ALERTS: &str = "PRINTER_ALERTS";
pub const COLLECTOR_ALERTS: &str = "COLLECTOR_ALERTS";
pub const ERP_ALERTS: &str = "ERP_ALERTS";
pub const DAILY_SUMMARY: &str = "DAILY_SUMMARY";

const UNIT: Variable = var(
    "unit",
    Words::new("подразделение", "the unit"),
    Words::new("Пиццерия на Ленина", "Lenin St pizzeria"),
);
const REGISTER: Variable = var(
    "register",
    Words::new("касса", "the register"),
    Words::new("Касса 2", "Till 2"),
);
const INCIDENT: Variable = var(
    "incident",
    Words::new("что случилось", "what is wrong"),
    Words::new("Нет бумаги", "Out of paper"),
);
const DURATION: Variable = var(
    "duration",
    Words::new("сколько длится", "how long"),
    Words::new("1 ч 5 мин", "1 h 5 min"),
);
const PRINTER: Variable = var(
    "printer",
    Words::new("принтер", "the printer"),
    Words::new("Кухня", "Kitchen"),
);
const ERROR: Variable = var(
    "error",
    Words::new(
        "ошибка (пусто — строка не выводится)",
        "the error (empty: the line is left out)",
    ),
    Words::new("connection refused", "connection refused"),
);
const ORDER: Variable = var(
    "order",
    Words::new("номер заказа", "the order"),
    Words::new("117", "117"),
);

pub const INCIDENT_OPENED: Template = Template {
    key: "incident_opened",
    report_type: REGISTER_INCIDENTS,
    title: Words::new("Касса: инцидент открыт", "Register: incident opened"),
    variables: &[
        REGISTER,
        UNIT,
        INCIDENT,
        var(
            "detail",
            Words::new(
                "подробности (пусто — строка не выводится)",
                "details (empty: the line is left out)",
            ),
            Words::new("25 чеков не отправлено", "25 receipts unsent"),
        ),
    ],
    default: Words::new(
        "<b>{register}</b> · {unit}\n🔴 {incident}\n{detail}",
        "<b>{register}</b> · {unit}\n🔴 {incident}\n{detail}",
    ),
};

pub const INCIDENT_REMINDED: Template = Template {
    key: "incident_reminded",
    report_type: REGISTER_INCIDENTS,
    title: Words::new(
        "Касса: напоминание об открытом инциденте",
        "Register: reminder of an open incident",
    ),
    variables: &[REGISTER, UNIT, INCIDENT, DURATION],
    default: Words::new(
        "<b>{register}</b> · {unit}\n⏰ {incident}: не исправлено уже {duration}",
        "<b>{register}</b> · {unit}\n⏰ {incident}: still not fixed after {duration}",
    ),
};

pub const INCIDENT_CLOSED: Template = Template {
    key: "incident_closed",
    report_type: REGISTER_INCIDENTS,
    title: Words::new("Касса: инцидент закрыт", "Register: incident closed"),
    variables: &[REGISTER, UNIT, INCIDENT, DURATION],
    default: Words::new(
        "<b>{register}</b> · {unit}\n✅ {incident}: закончилось, длилось {duration}",
        "<b>{register}</b> · {unit}\n✅ {incident}: over after {duration}",
    ),
};

pub const PRINTER_FAILING: Template = Template {
    key: "printer_failing",
    report_type: PRINTER_ALERTS,
    title: Words::new("Принтер не печатает", "A printer does not print"),
    variables: &[PRINTER, UNIT, ERROR],
    default: Words::new(
        "🖨 <b>{printer}</b> · {unit}\n⚠️ Принтер не печатает\n<code>{error}</code>",
        "🖨 <b>{printer}</b> · {unit}\n⚠️ The printer does not print\n<code>{error}</code>",
    ),
};

pub const PRINTER_RECOVERED: Template = Template {
    key: "printer_recovered",
    report_type: PRINTER_ALERTS,
    title: Words::new("Принтер снова печатает", "A printer prints again"),
    variables: &[PRINTER, UNIT],
    default: Words::new(
        "🖨 <b>{printer}</b> · {unit}\n✅ Принтер снова печатает",
        "🖨 <b>{printer}</b> · {unit}\n✅ The printer prints again",
    ),
};

pub const TICKET_GIVEN_UP: Template = Template {
    key: "ticket_given_up",
    report_type: PRINTER_ALERTS,
    title: Words::new("Талон не напечатан", "A ticket given up"),
    variables: &[PRINTER, UNIT, ORDER, ERROR],
    default: Words::new(
        "🖨 <b>{printer}</b> · {unit}\n❌ Талон не напечатан, заказ {order}\n<code>{error}</code>",
        "🖨 <b>{printer}</b> · {unit}\n❌ A ticket was given up, order {order}\n<code>{error}</code>",
    ),
};

pub const COLLECTOR_BEHIND: Template = Template {
    key: "collector_behind",
    report_type: COLLECTOR_ALERTS,
    title: Words::new(
        "Продажи кассы не собираются",
        "A register's sales are not collected",
    ),
    variables: &[
        REGISTER,
        UNIT,
        var(
            "since",
            Words::new("с какого времени", "since when"),
            Words::new("14:05", "14:05"),
        ),
        ERROR,
    ],
    default: Words::new(
        "📥 <b>{register}</b> · {unit}\n⚠️ Продажи не собираются с {since}\n<code>{error}</code>",
        "📥 <b>{register}</b> · {unit}\n⚠️ Sales not collected since {since}\n<code>{error}</code>",
    ),
};

pub const COLLECTOR_RECOVERED: Template = Template {
    key: "collector_recovered",
    report_type: COLLECTOR_ALERTS,
    title: Words::new(
        "Продажи кассы снова собираются",
        "A register's sales are collected again",
    ),
    variables: &[REGISTER, UNIT, DURATION],
    default: Words::new(
        "📥 <b>{register}</b> · {unit}\n✅ Продажи снова собираются, перерыв {duration}",
        "📥 <b>{register}</b> · {unit}\n✅ Sales are collected again after {duration}",
    ),
};

pub const ERP_LINE_FAILED: Template = Template {
    key: "erp_line_failed",
    report_type: ERP_ALERTS,
    title: Words::new(
        "Строка заказа не попала в ERP",
        "An order line failed in the ERP",
    ),
    variables: &[
        var(
            "workshop",
            Words::new("мастерская", "the workshop"),
            Words::new("Шиномонтаж Север", "North tyre shop"),
        ),
        UNIT,
        ORDER,
        var(
            "line",
            Words::new("строка заказа", "the order line"),
            Words::new("Масло 5W-30, 4 л", "Oil 5W-30, 4 l"),
        ),
        ERROR,
    ],
    default: Words::new(
        "🛠 <b>{workshop}</b> · {unit}\n❌ Не попало в ERP: заказ {order}, {line}\n<code>{error}</code>",
        "🛠 <b>{workshop}</b> · {unit}\n❌ Not in the ERP: order {order}, {line}\n<code>{error}</code>",
    ),
};

pub const DAILY: Template = Template {
    key: "daily_summary",
    report_type: DAILY_SUMMARY,
    title: Words::new("Итоги дня", "Daily summary"),
    variables: &[
        UNIT,
        var(
            "date",
            Words::new("день", "the day"),
            Words::new("05.12.2026", "05.12.2026"),
        ),
        var(
            "orders",
            Words::new("заказов", "orders"),
            Words::new("342", "342"),
        ),
        var(
            "avg_ready",
            Words::new("среднее время до готовности", "average time to ready"),
            Words::new("6 мин", "6 min"),
        ),
        var(
            "p90_ready",
            Words::new("90% заказов готовы за", "90% of orders ready within"),
            Words::new("11 мин", "11 min"),
        ),
        var(
            "incidents",
            Words::new("инцидентов касс", "register incidents"),
            Words::new("3", "3"),
        ),
        var(
            "incident_time",
            Words::new("их общая длительность", "their total duration"),
            Words::new("1 ч 20 мин", "1 h 20 min"),
        ),
        var(
            "printer_trouble",
            Words::new("сбоев принтеров", "printer failures"),
            Words::new("1", "1"),
        ),
        var(
            "collector_trouble",
            Words::new("сбоев сбора продаж", "collection failures"),
            Words::new("0", "0"),
        ),
        var(
            "revenue",
            Words::new(
                "выручка iiko за день (пусто — строка не выводится)",
                "iiko's revenue of the day (empty: the line is left out)",
            ),
            Words::new("48 250,50", "48,250.50"),
        ),
        var(
            "iiko_orders",
            Words::new("закрытых заказов iiko", "closed iiko orders"),
            Words::new("131", "131"),
        ),
        var(
            "top_dishes",
            Words::new("самые продаваемые блюда iiko", "iiko's best-selling dishes"),
            Words::new("Маргарита ×42, Цезарь ×17", "Margherita ×42, Caesar ×17"),
        ),
    ],
    default: Words::new(
        "📊 <b>{unit}</b> · итоги за {date}\nЗаказов: {orders}\nДо готовности: в среднем {avg_ready}, 90% — за {p90_ready}\nИнциденты касс: {incidents}, всего {incident_time}\nСбои принтеров: {printer_trouble}\nСбои сбора продаж: {collector_trouble}\niiko: выручка {revenue}, заказов {iiko_orders}; чаще всего — {top_dishes}",
        "📊 <b>{unit}</b> · summary of {date}\nOrders: {orders}\nTo ready: {avg_ready} on average, 90% within {p90_ready}\nRegister incidents: {incidents}, {incident_time} in all\nPrinter failures: {printer_trouble}\nCollection failures: {collector_trouble}\niiko: revenue {revenue}, {iiko_orders} orders; best sellers {top_dishes}",
    ),
};

/// Every kind of message, in the order the page lists them.
pub const ALL: &[&Template] = &[
    &INCIDENT_OPENED,
    &INCIDENT_REMINDED,
    &INCIDENT_CLOSED,
    &PRINTER_FAILING,
    &PRINTER_RECOVERED,
    &TICKET_GIVEN_UP,
    &COLLECTOR_BEHIND,
    &COLLECTOR_RECOVERED,
    &ERP_LINE_FAILED,
    &DAILY,
];

pub fn find(key: &str) -> Option<&'static Template> {
    ALL.iter().copied().find(|t| t.key == key)
}

/// The placeholders of `body`: `{name}` with a name of lower-case letters, digits and `_`; other braces are text.
fn placeholders(body: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    body.match_indices('{').filter_map(move |(start, _)| {
        let rest = &body[start + 1..];
        let end = rest.find('}')?;
        let name = &rest[..end];
        (!name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .then_some((start, start + end + 2, name))
    })
}

/// `body` with its placeholders replaced by `values`, escaped; a line whose placeholders are all empty is left
/// out. An unknown placeholder stays as written (a saved template has none).
pub fn fill(body: &str, values: &[(&str, String)]) -> String {
    let mut lines = Vec::new();
    for line in body.split('\n') {
        let mut out = String::with_capacity(line.len());
        let mut at = 0;
        let (mut found, mut filled) = (0, 0);
        for (start, end, name) in placeholders(line) {
            let Some((_, value)) = values.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            out.push_str(&line[at..start]);
            out.push_str(&escape(value));
            at = end;
            found += 1;
            if !value.trim().is_empty() {
                filled += 1;
            }
        }
        out.push_str(&line[at..]);
        if found == 0 || filled > 0 {
            lines.push(out);
        }
    }
    lines.join("\n")
}

/// The longest template body kept (a message is cut at 4,096 characters anyway).
const MAX_BODY: usize = 3_000;

/// Checks a template body an admin wrote: not empty, not too long, only its own placeholders, and valid Telegram
/// HTML once filled with the sample values.
pub fn check_body(template: &Template, body: &str, lang: Lang) -> Result<(), Text> {
    if body.trim().is_empty() {
        return Err(Text::new("Текст шаблона пуст.", "The template is empty."));
    }
    if body.chars().count() > MAX_BODY {
        return Err(Text::new(
            format!("Шаблон длиннее {MAX_BODY} знаков."),
            format!("The template is longer than {MAX_BODY} characters."),
        ));
    }
    if let Some((_, _, name)) =
        placeholders(body).find(|(_, _, name)| template.variable(name).is_none())
    {
        let known: Vec<String> = template
            .variables
            .iter()
            .map(|v| format!("{{{}}}", v.name))
            .collect();
        return Err(Text::new(
            format!(
                "Нет такой подстановки: {{{name}}}. Есть: {}.",
                known.join(", ")
            ),
            format!(
                "No such placeholder: {{{name}}}. There are: {}.",
                known.join(", ")
            ),
        ));
    }
    check(&fill(body, &template.samples(lang)))
}

/// The templates in force: the built-in ones, and those an admin replaced.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    custom: HashMap<(String, String), String>,
}

fn lang_key(lang: Lang) -> &'static str {
    lang.pick("ru", "en")
}

impl Templates {
    pub async fn load(store: &Store) -> Result<Self, sqlx::Error> {
        let rows: Vec<(String, String, String)> = read!(store, db => sqlx::query_as(
            "SELECT template, lang, body FROM notify_templates",
        )
        .fetch_all(db)
        .await)?;
        Ok(Templates {
            custom: rows
                .into_iter()
                .map(|(template, lang, body)| ((template, lang), body))
                .collect(),
        })
    }

    /// The body in force for `template` in `lang`, and whether an admin wrote it.
    pub fn body(&self, template: &Template, lang: Lang) -> (&str, bool) {
        match self
            .custom
            .get(&(template.key.to_owned(), lang_key(lang).to_owned()))
        {
            Some(body) => (body, true),
            None => (template.default.get(lang), false),
        }
    }

    /// The message `template` makes of `values` in `lang`.
    pub fn render(&self, template: &Template, lang: Lang, values: &[(&str, String)]) -> String {
        fill(self.body(template, lang).0, values)
    }
}

/// Keeps an admin's body for `template` in `lang`, once checked.
pub async fn save(
    store: &Store,
    template: &Template,
    lang: Lang,
    body: &str,
    by: &str,
) -> Result<(), HttpError> {
    let body = body.replace("\r\n", "\n");
    check_body(template, &body, lang).map_err(|message| HttpError::field("body", message))?;
    write!(store, db => sqlx::query(
        "INSERT INTO notify_templates (template, lang, body, updated_ms, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (template, lang) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms,
             updated_by = excluded.updated_by",
    )
    .bind(template.key)
    .bind(lang_key(lang))
    .bind(&body)
    .bind(now_ms())
    .bind(by)
    .execute(db)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Goes back to the built-in body of `template` in `lang`.
pub async fn reset(store: &Store, template: &Template, lang: Lang) -> Result<(), sqlx::Error> {
    write!(store, db => sqlx::query("DELETE FROM notify_templates WHERE template = $1 AND lang = $2")
        .bind(template.key)
        .bind(lang_key(lang))
        .execute(db)
        .await
        .map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_template_is_valid_in_both_languages() {
        for template in ALL {
            for lang in [Lang::Ru, Lang::En] {
                assert_eq!(
                    check_body(template, template.default.get(lang), lang),
                    Ok(()),
                    "{} in {lang:?}",
                    template.key
                );
            }
        }
        let keys: std::collections::HashSet<_> = ALL.iter().map(|t| t.key).collect();
        assert_eq!(keys.len(), ALL.len(), "keys are unique");
    }

    #[test]
    fn every_placeholder_of_every_built_in_template_is_filled() {
        for template in ALL {
            for lang in [Lang::Ru, Lang::En] {
                let filled = fill(template.default.get(lang), &template.samples(lang));
                assert!(
                    !filled.contains('{'),
                    "{} in {lang:?}: {filled}",
                    template.key
                );
            }
        }
    }

    #[test]
    fn values_are_escaped_and_empty_lines_left_out() {
        let filled = fill(
            "<b>{printer}</b> · {unit}\n⚠️ {unit} {x}\n<code>{error}</code>\n{{not a placeholder}}",
            &[
                ("printer", "<Кухня> & \"Бар\"".into()),
                ("unit", "Пицца".into()),
                ("error", String::new()),
            ],
        );
        assert_eq!(
            filled,
            "<b>&lt;Кухня&gt; &amp; &quot;Бар&quot;</b> · Пицца\n⚠️ Пицца {x}\n{{not a placeholder}}"
        );
    }

    #[test]
    fn a_body_with_a_stranger_placeholder_or_bad_html_is_refused() {
        let said = |body: &str| {
            check_body(&PRINTER_FAILING, body, Lang::En).map_err(|e| e.get(Lang::En).to_owned())
        };
        assert_eq!(said("<b>{printer}</b> {unit} {error}"), Ok(()));
        assert_eq!(
            said("{printer} {register}"),
            Err("No such placeholder: {register}. There are: {printer}, {unit}, {error}.".into())
        );
        assert_eq!(
            said("<b>{printer}"),
            Err("The tag <b> is not closed.".into())
        );
        assert_eq!(said("  \n "), Err("The template is empty.".into()));
    }
}
