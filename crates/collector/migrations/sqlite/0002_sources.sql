-- Set Retail registers added on the admin pages (next to tillwire.toml's `[[collector.setretail]]`). The password
-- is sealed with the platform's secret box; `revision` grows on every change so the collector restarts just that
-- register's task.
CREATE TABLE collector_sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_id BIGINT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    port BIGINT NOT NULL,
    database_name TEXT NOT NULL,
    login TEXT NOT NULL,
    password_sealed TEXT NOT NULL,
    custom_sql TEXT,
    timer_ms BIGINT NOT NULL,
    revision BIGINT NOT NULL DEFAULT 1,
    updated_ms BIGINT NOT NULL,
    UNIQUE (unit_id, host, port, database_name)
);
