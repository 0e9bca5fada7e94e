//! Which of tillwire's own events become messages, and with what values: register incidents opened, reminded of
//! and closed; printers that stop and start printing and tickets given up; registers whose sales are not
//! collected and collected again; ERP order lines that failed. The words around the values are the templates'
//! (`templates`); the values here are in the language of the message.

use tillwire_platform::Settings;
use tillwire_platform::admin::{human_duration, local_time};
use tillwire_platform::outbox::DomainEvent;
use tillwire_platform::web::Lang;

use crate::templates::{self, Template};

/// What the ERP area records when an order line could not be put into a workshop's ERP: `workshop`, `order`,
/// `line` and `error` in its payload, the event's unit the workshop's.
pub use tillwire_erp::orders::LINE_FAILED as ERP_LINE_FAILED;

/// A message to fill in and send to the chats routed for its unit and its template's report type.
#[derive(Debug, Clone)]
pub struct Message {
    pub template: &'static Template,
    pub unit_id: i64,
    pub values: Vec<(&'static str, String)>,
}

/// The message `event` makes in `lang`, when it is one tillwire tells chats about. `unit` is the name of the
/// event's unit.
pub fn message(
    event: &DomainEvent,
    unit: &str,
    lang: Lang,
    settings: &Settings,
) -> Option<Message> {
    let unit_id = event.unit_id?;
    let payload = event.payload();
    let text = |key: &str| payload[key].as_str().unwrap_or_default().to_owned();
    let duration = |key: &str| human_duration(payload[key].as_i64().unwrap_or_default(), lang);
    let (template, mut values): (&'static Template, Vec<(&'static str, String)>) =
        match event.kind.as_str() {
            tillwire_monitor::storage::INCIDENT_OPENED
            | tillwire_monitor::storage::INCIDENT_REMINDED
            | tillwire_monitor::storage::INCIDENT_CLOSED => {
                let kind = tillwire_monitor::Kind::parse(payload["kind"].as_str()?)?;
                let incident = kind.label().get(lang).to_owned();
                let values = vec![("register", text("register_name")), ("incident", incident)];
                match event.kind.as_str() {
                    tillwire_monitor::storage::INCIDENT_OPENED => {
                        let detail = match kind {
                            tillwire_monitor::Kind::OfdBacklog => format!(
                                "{} {}",
                                text("detail"),
                                lang.pick("чеков не отправлено", "receipts unsent")
                            ),
                            tillwire_monitor::Kind::ReceiptStuck => payload["detail"]
                                .as_str()
                                .and_then(|ms| ms.parse::<i64>().ok())
                                .map(|ms| {
                                    format!(
                                        "{} {}",
                                        lang.pick("без действий с", "no activity since"),
                                        local_time(settings, ms, "%H:%M")
                                    )
                                })
                                .unwrap_or_default(),
                            _ => String::new(),
                        };
                        (
                            &templates::INCIDENT_OPENED,
                            [values, vec![("detail", detail)]].concat(),
                        )
                    }
                    tillwire_monitor::storage::INCIDENT_REMINDED => {
                        let open_for = human_duration(
                            event.created_ms
                                - payload["opened_ms"].as_i64().unwrap_or(event.created_ms),
                            lang,
                        );
                        (
                            &templates::INCIDENT_REMINDED,
                            [values, vec![("duration", open_for)]].concat(),
                        )
                    }
                    _ => (
                        &templates::INCIDENT_CLOSED,
                        [values, vec![("duration", duration("duration_ms"))]].concat(),
                    ),
                }
            }
            tillwire_printing::PRINTER_FAILING => (
                &templates::PRINTER_FAILING,
                vec![("printer", text("printer")), ("error", text("error"))],
            ),
            tillwire_printing::PRINTER_RECOVERED => (
                &templates::PRINTER_RECOVERED,
                vec![("printer", text("printer"))],
            ),
            tillwire_printing::TICKET_GIVEN_UP => (
                &templates::TICKET_GIVEN_UP,
                vec![
                    ("printer", text("printer")),
                    (
                        "order",
                        payload["order_id"].as_i64().unwrap_or_default().to_string(),
                    ),
                    ("error", text("error")),
                ],
            ),
            tillwire_collector::REGISTER_BEHIND => (
                &templates::COLLECTOR_BEHIND,
                vec![
                    ("register", text("register")),
                    (
                        "since",
                        local_time(
                            settings,
                            payload["since_ms"].as_i64().unwrap_or_default(),
                            "%H:%M",
                        ),
                    ),
                    ("error", text("error")),
                ],
            ),
            tillwire_collector::REGISTER_RECOVERED => (
                &templates::COLLECTOR_RECOVERED,
                vec![
                    ("register", text("register")),
                    ("duration", duration("duration_ms")),
                ],
            ),
            ERP_LINE_FAILED => (
                &templates::ERP_LINE_FAILED,
                vec![
                    ("workshop", text("workshop")),
                    ("order", text("order")),
                    ("line", text("line")),
                    ("error", text("error")),
                ],
            ),
            _ => return None,
        };
    values.push(("unit", unit.to_owned()));
    Some(Message {
        template,
        unit_id,
        values,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::templates::Templates;

    fn event(kind: &str, payload: serde_json::Value) -> DomainEvent {
        DomainEvent {
            id: 1,
            unit_id: Some(3),
            kind: kind.to_owned(),
            payload: payload.to_string(),
            created_ms: 7_200_000,
        }
    }

    fn settings() -> Settings {
        let mut settings = Settings::for_database("sqlite://unused.sqlite3");
        settings.timezone = Some(chrono_tz::Europe::Moscow);
        settings
    }

    /// The HTML `event` makes with the built-in templates.
    fn html(kind: &str, payload: serde_json::Value, unit: &str, lang: Lang) -> Option<String> {
        let message = message(&event(kind, payload), unit, lang, &settings())?;
        assert_eq!(message.unit_id, 3);
        Some(Templates::default().render(message.template, lang, &message.values))
    }

    #[test]
    fn register_incidents_read_well_and_escape_names() {
        assert_eq!(
            html(
                tillwire_monitor::storage::INCIDENT_OPENED,
                json!({"register_name": "Касса <1> & \"2\"", "kind": "ofd_backlog", "detail": "25"}),
                "Пицца & Co",
                Lang::Ru,
            )
            .as_deref(),
            Some(
                "<b>Касса &lt;1&gt; &amp; &quot;2&quot;</b> · Пицца &amp; Co\n🔴 Чеки не ушли в ОФД\n25 чеков не отправлено"
            )
        );
        assert_eq!(
            html(
                tillwire_monitor::storage::INCIDENT_OPENED,
                json!({"register_name": "Till 1", "kind": "no_paper", "detail": ""}),
                "North",
                Lang::En,
            )
            .as_deref(),
            Some("<b>Till 1</b> · North\n🔴 Out of paper"),
            "no detail, no line"
        );
        assert_eq!(
            html(
                tillwire_monitor::storage::INCIDENT_REMINDED,
                json!({"register_name": "Till 1", "kind": "offline", "opened_ms": 0}),
                "North",
                Lang::En,
            )
            .as_deref(),
            Some("<b>Till 1</b> · North\n⏰ Offline: still not fixed after 2 h 0 min")
        );
        assert_eq!(
            html(
                tillwire_monitor::storage::INCIDENT_CLOSED,
                json!({"register_name": "Till 1", "kind": "offline", "duration_ms": 3_900_000}),
                "North",
                Lang::En,
            )
            .as_deref(),
            Some("<b>Till 1</b> · North\n✅ Offline: over after 1 h 5 min")
        );
        assert_eq!(
            html(
                tillwire_monitor::storage::INCIDENT_ACKNOWLEDGED,
                json!({}),
                "",
                Lang::Ru
            ),
            None,
            "an acknowledgement is not a message"
        );
    }

    #[test]
    fn printer_alerts_carry_the_error_as_code() {
        assert_eq!(
            html(
                tillwire_printing::PRINTER_FAILING,
                json!({"printer": "Кухня", "error": "connection refused <tcp>"}),
                "Пиццерия",
                Lang::Ru,
            )
            .as_deref(),
            Some(
                "🖨 <b>Кухня</b> · Пиццерия\n⚠️ Принтер не печатает\n<code>connection refused &lt;tcp&gt;</code>"
            )
        );
    }

    #[test]
    fn collector_and_erp_alerts_name_what_failed() {
        assert_eq!(
            html(
                tillwire_collector::REGISTER_BEHIND,
                json!({"register": "10.0.0.5:5432/cash", "since_ms": 0, "error": "connection refused"}),
                "Пиццерия",
                Lang::Ru,
            )
            .as_deref(),
            Some("📥 <b>10.0.0.5:5432/cash</b> · Пиццерия\n⚠️ Продажи не собираются с 03:00\n<code>connection refused</code>")
        );
        assert_eq!(
            html(
                tillwire_collector::REGISTER_RECOVERED,
                json!({"register": "10.0.0.5:5432/cash", "duration_ms": 1_200_000}),
                "North",
                Lang::En,
            )
            .as_deref(),
            Some("📥 <b>10.0.0.5:5432/cash</b> · North\n✅ Sales are collected again after 20 min")
        );
        assert_eq!(
            html(
                ERP_LINE_FAILED,
                json!({"workshop": "Север & Co", "order": "A-17", "line": "Масло 5W-30", "error": "login refused"}),
                "Север",
                Lang::Ru,
            )
            .as_deref(),
            Some("🛠 <b>Север &amp; Co</b> · Север\n❌ Не попало в ERP: заказ A-17, Масло 5W-30\n<code>login refused</code>")
        );
    }
}
