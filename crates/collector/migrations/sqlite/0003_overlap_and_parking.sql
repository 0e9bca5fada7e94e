-- The sales delivered within the overlap window behind each cursor, so a pass that re-reads the window (a
-- register's clock stepped back, a sale committed late behind a newer one) sends only what it has not sent.
-- Rows older than the window are pruned, so a source's rows are few and its primary key finds them: a second
-- index cost a tenth of the backfill rate.
CREATE TABLE collector_delivered (
    source TEXT NOT NULL,
    purchase_id BIGINT NOT NULL,
    commit_us BIGINT NOT NULL,
    PRIMARY KEY (source, purchase_id)
);

-- Receipts the receiving side refused for a reason retrying cannot fix: set aside so the register moves on,
-- shown on the collector page with the reason, and sent again (`retry_requested`) or skipped from there.
CREATE TABLE collector_parked (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    purchase_id BIGINT NOT NULL,
    commit_us BIGINT NOT NULL,
    receipt TEXT NOT NULL,
    reason TEXT NOT NULL,
    parked_ms BIGINT NOT NULL,
    retry_requested BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (source, purchase_id)
);
