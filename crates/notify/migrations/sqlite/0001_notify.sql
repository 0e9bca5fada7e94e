-- Every message tillwire sends to Telegram: one row per part of a text for one chat (and topic; 0 is none),
-- written in the transaction that enqueues the job sending it, so nothing is lost between an event and its
-- delivery. An event handled twice (its consumer taken over after a crash) adds nothing: the unique index.
CREATE TABLE notify_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id BIGINT,
    chat_id BIGINT NOT NULL,
    thread_id BIGINT NOT NULL DEFAULT 0,
    part BIGINT NOT NULL DEFAULT 0,
    report_type TEXT NOT NULL,
    text TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    telegram_message_id BIGINT,
    created_ms BIGINT NOT NULL,
    sent_ms BIGINT
);
CREATE UNIQUE INDEX notify_messages_once ON notify_messages (event_id, chat_id, thread_id, part);
CREATE INDEX notify_messages_by_state ON notify_messages (state, id);

-- Pacing every instance shares: the next moment a message may go, per chat, per group and in all.
CREATE TABLE notify_pace (
    pace_key TEXT PRIMARY KEY,
    next_ms BIGINT NOT NULL
);
