-- A register whose reads have failed for long enough that its unit was told (`collector.register_behind`); the
-- row goes when it is collected again (`collector.register_recovered`). One row per register task.
CREATE TABLE collector_alerts (
    task_key TEXT PRIMARY KEY,
    unit_id BIGINT NOT NULL,
    since_ms BIGINT NOT NULL
);
