-- The UKM 5 registers the monitor polls, per unit: added on the admin pages, imported from CSV, through the API or
-- declared in tillwire.toml (`declared`, kept in step with the file at every start). `timezone` NULL means the
-- install's; `thresholds` holds the register's overrides as JSON.
CREATE TABLE monitor_registers (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    timezone TEXT,
    region TEXT NOT NULL DEFAULT '',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    declared BOOLEAN NOT NULL DEFAULT FALSE,
    thresholds TEXT NOT NULL DEFAULT '{}',
    updated_ms BIGINT NOT NULL,
    UNIQUE (unit_id, name)
);

-- A unit's threshold overrides (JSON), over the chain's defaults.
CREATE TABLE monitor_unit_thresholds (
    unit_id BIGINT PRIMARY KEY REFERENCES units (id) ON DELETE CASCADE,
    thresholds TEXT NOT NULL
);

-- Each register's state as its owner last stored it (JSON, with the streaks that open and close incidents), so
-- pages on any instance show it and an instance taking the register over goes on from it.
CREATE TABLE monitor_state (
    register_id BIGINT PRIMARY KEY REFERENCES monitor_registers (id) ON DELETE CASCADE,
    health TEXT NOT NULL,
    up BOOLEAN,
    updated_ms BIGINT NOT NULL
);

-- Incidents with their history. At most one open incident of a kind per register, whichever instance opens it.
CREATE TABLE monitor_incidents (
    id BIGSERIAL PRIMARY KEY,
    register_id BIGINT NOT NULL REFERENCES monitor_registers (id) ON DELETE CASCADE,
    unit_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    opened_ms BIGINT NOT NULL,
    acknowledged_ms BIGINT,
    acknowledged_by TEXT,
    reminded_ms BIGINT,
    closed_ms BIGINT
);
CREATE UNIQUE INDEX monitor_incidents_open ON monitor_incidents (register_id, kind) WHERE closed_ms IS NULL;
CREATE INDEX monitor_incidents_by_register ON monitor_incidents (register_id, opened_ms);
CREATE INDEX monitor_incidents_by_time ON monitor_incidents (opened_ms);

-- Maintenance windows of a unit (register_id NULL) or of one register: no incident opens inside one.
CREATE TABLE monitor_maintenance (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    register_id BIGINT REFERENCES monitor_registers (id) ON DELETE CASCADE,
    starts_ms BIGINT NOT NULL,
    ends_ms BIGINT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX monitor_maintenance_by_end ON monitor_maintenance (ends_ms);

-- A register's recent history, one row a minute: up, busy, the OFD backlog and the response time, for the
-- register page's timeline and plot. Rows older than the retention are pruned.
CREATE TABLE monitor_samples (
    register_id BIGINT NOT NULL REFERENCES monitor_registers (id) ON DELETE CASCADE,
    at_ms BIGINT NOT NULL,
    up BOOLEAN NOT NULL,
    busy BOOLEAN,
    ofd BIGINT,
    latency_ms BIGINT,
    PRIMARY KEY (register_id, at_ms)
);
CREATE INDEX monitor_samples_by_time ON monitor_samples (at_ms);
