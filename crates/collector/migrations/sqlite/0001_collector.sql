-- Where each Set Retail source has been read up to: the last acknowledged receipt's commit time
-- (microseconds of the register's wall clock) and purchase id, the tie-breaker within one instant.
CREATE TABLE collector_cursors (
    source TEXT PRIMARY KEY,
    commit_us BIGINT NOT NULL,
    purchase_id BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
