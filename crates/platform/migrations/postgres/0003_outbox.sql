-- Durable domain events, written in the transaction of the change that caused them. Recording one first takes a
-- transaction-level advisory lock, so event-writing transactions take their ids in commit order and a consumer's
-- cursor can be the last id it handled: no lower id can become visible later.
CREATE TABLE domain_events (
    id BIGSERIAL PRIMARY KEY,
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
