//! From tillwire's durable domain events to messages: one consumer of the outbox (one instance at a time, taken
//! over when it dies) renders each event it knows, asks the directory which chats are routed for the event's unit
//! and report type, and writes one message row and one send job per chat and part in a single transaction before
//! it moves its cursor. An event handled twice (after a takeover) writes nothing new: the rows are unique per
//! event, chat, topic and part.

use std::time::Duration;

use tillwire_directory::routing::{Recipient, Routing};
use tillwire_platform::area::Shutdown;
use tillwire_platform::jobs::{BackgroundJob, EnqueueJob};
use tillwire_platform::outbox::DomainEvent;
use tillwire_platform::web::Lang;
use tillwire_platform::{Platform, read, write_tx};
use tillwire_units::{UnitId, Units};

use crate::html::{MESSAGE_LIMIT, escape, split};
use crate::render::message;
use crate::templates::Templates;
use crate::token::BotToken;

/// The outbox consumer's name.
pub const CONSUMER: &str = "notify";
const BATCH: i64 = 100;
/// How often an idle consumer looks for new events: the wait an alert may add before it goes (one cheap read;
/// 300 ms made it a third of the time from an incident to Telegram's answer).
const IDLE: Duration = Duration::from_millis(50);

/// A message to write: the event it comes from (none: a test message, a report), the chat, its topic (0: none),
/// the part and its text.
pub(crate) struct Planned {
    pub event_id: Option<i64>,
    pub chat_id: i64,
    pub thread_id: i64,
    pub part: i64,
    pub report_type: String,
    pub text: String,
}

/// One message per recipient and part of `html`.
pub(crate) fn planned(
    event_id: Option<i64>,
    recipients: &[Recipient],
    report_type: &str,
    html: &str,
) -> Vec<Planned> {
    let parts = split(html, MESSAGE_LIMIT);
    recipients
        .iter()
        .flat_map(|recipient| {
            parts.iter().enumerate().map(move |(part, text)| Planned {
                event_id,
                chat_id: recipient.chat_id,
                thread_id: recipient.thread_id.unwrap_or(0),
                part: part as i64,
                report_type: report_type.to_owned(),
                text: text.clone(),
            })
        })
        .collect()
}

/// Inside a `write_tx!`: writes the planned messages not written yet (`$planned`, a slice of [`Planned`]) and
/// enqueues a send job for each; evaluates to the new messages' ids. A macro because the transaction is a
/// different type on each backend.
macro_rules! insert_planned {
    ($tx:ident, $planned:expr) => {{
        let now = tillwire_platform::now_ms();
        let mut jobs = Vec::new();
        let mut ids = Vec::new();
        for message in $planned {
            let inserted: Option<(i64,)> = sqlx::query_as(
                "INSERT INTO notify_messages (event_id, chat_id, thread_id, part, report_type, text, state, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)
                 ON CONFLICT (event_id, chat_id, thread_id, part) DO NOTHING RETURNING id",
            )
            .bind(message.event_id)
            .bind(message.chat_id)
            .bind(message.thread_id)
            .bind(message.part)
            .bind(&message.report_type)
            .bind(&message.text)
            .bind(now)
            .fetch_optional(&mut **$tx)
            .await?;
            if let Some((id,)) = inserted {
                ids.push(id);
                jobs.push(
                    $crate::delivery::SendMessage {
                        message: id,
                        chat_id: message.chat_id,
                    }
                    .to_job(),
                );
            }
        }
        (**$tx).enqueue_jobs(&jobs).await?;
        ids
    }};
}
pub(crate) use insert_planned;

/// Runs the consumer until `shutdown`.
pub async fn run(
    platform: Platform,
    lang: Lang,
    token: BotToken,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    // Without a token nothing could be sent: the consumer starts (at the newest event) once there is one.
    if token.wait(&mut shutdown).await.is_none() {
        return Ok(());
    }
    platform.outbox.start_at_end(CONSUMER).await?;
    loop {
        let handled = match platform.outbox.next(CONSUMER, BATCH).await {
            Ok(Some(batch)) if !batch.events.is_empty() => {
                match plan(&platform, &batch.events, lang).await {
                    Ok(planned) => match write(&platform, &planned).await {
                        Ok(_) => {
                            platform.jobs.notify();
                            let _ = platform.outbox.ack(CONSUMER, &batch).await;
                            batch.events.len()
                        }
                        Err(error) => {
                            tracing::warn!(%error, "notify: could not write messages; trying again");
                            0
                        }
                    },
                    Err(error) => {
                        tracing::warn!(%error, "notify: could not route events; trying again");
                        0
                    }
                }
            }
            Ok(_) => 0,
            Err(error) => {
                tracing::warn!(%error, "notify: could not read events; trying again");
                0
            }
        };
        if handled == BATCH as usize {
            continue;
        }
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tokio::time::sleep(IDLE) => {}
        }
    }
    let _ = platform.outbox.release(CONSUMER).await;
    Ok(())
}

/// The messages of a batch of events.
async fn plan(
    platform: &Platform,
    events: &[DomainEvent],
    lang: Lang,
) -> anyhow::Result<Vec<Planned>> {
    let routing = Routing(platform.store.clone());
    let templates = Templates::load(&platform.store).await?;
    let mut planned = Vec::new();
    for event in events {
        let Some(unit_id) = event.unit_id else {
            continue;
        };
        let unit = Units(&platform.store)
            .get(UnitId(unit_id))
            .await
            .map(|unit| unit.name)
            .unwrap_or_default();
        let Some(message) = message(event, &unit, lang, &platform.settings) else {
            continue;
        };
        let report_type = message.template.report_type;
        let html = templates.render(message.template, lang, &message.values);
        let recipients = routing.recipients(unit_id, report_type).await?;
        planned.extend(self::planned(
            Some(event.id),
            &recipients,
            report_type,
            &html,
        ));
    }
    Ok(planned)
}

/// Writes the messages not written yet and their jobs, in one transaction.
async fn write(platform: &Platform, planned: &[Planned]) -> Result<Vec<i64>, sqlx::Error> {
    if planned.is_empty() {
        return Ok(Vec::new());
    }
    write_tx!(&platform.store, tx => {
        let ids = insert_planned!(tx, planned);
        Ok::<_, sqlx::Error>(ids)
    })
}

/// Queues `html` for one chat (cut into parts as needed) outside any event: a test message, a report. The new
/// messages' ids.
pub async fn enqueue_text(
    platform: &Platform,
    chat_id: i64,
    thread_id: i64,
    report_type: &str,
    html: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    let recipient = Recipient {
        chat_id,
        thread_id: (thread_id != 0).then_some(thread_id),
    };
    let ids = write(platform, &planned(None, &[recipient], report_type, html)).await?;
    platform.jobs.notify();
    Ok(ids)
}

/// The report type of a test message.
pub const TEST: &str = "TEST";

/// Queues a test message (`text` as typed; empty: a standard one in `lang`) to a chat and topic (0: none).
pub async fn enqueue_test(
    platform: &Platform,
    lang: Lang,
    chat_id: i64,
    thread_id: i64,
    text: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    let text = match text.trim() {
        "" => lang.pick(
            "Проверка связи: tillwire пишет в этот чат.",
            "Testing: tillwire can write to this chat.",
        ),
        text => text,
    };
    enqueue_text(
        platform,
        chat_id,
        thread_id,
        TEST,
        &format!("🔔 {}", escape(text)),
    )
    .await
}

/// Messages waiting to go, for the queue-depth gauge.
pub async fn pending(platform: &Platform) -> Result<i64, sqlx::Error> {
    read!(&platform.store, db => sqlx::query_scalar(
        "SELECT COUNT(*) FROM notify_messages WHERE state = 'pending'",
    )
    .fetch_one(db)
    .await)
}
