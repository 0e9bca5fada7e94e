-- Durable domain events, written in the transaction of the change that caused them. SQLite has one writer, so
-- ids are taken in commit order and a consumer's cursor is the last id it handled.
CREATE TABLE domain_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_id BIGINT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- One row per consumer: where it is, and which process holds it (a lease, so a dead one is taken over).
CREATE TABLE event_cursors (
    consumer TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT '',
    locked_until_ms BIGINT NOT NULL DEFAULT 0,
    updated_ms BIGINT NOT NULL DEFAULT 0
);
