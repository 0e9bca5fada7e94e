-- iikoServers whose events journal is read for table orders made by hand in iikoFront: where, with which login
-- (the password sealed), the unit their orders join, the organization their orders and product mapping are filed
-- under (the cloud connection's, or one derived from the address), the zone of their wall-clock times, and the
-- journal's revision read so far.
CREATE TABLE iiko_servers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL UNIQUE,
    login TEXT NOT NULL,
    password_sealed TEXT NOT NULL,
    unit_id BIGINT,
    organization_id TEXT NOT NULL,
    time_zone TEXT,
    from_config BOOLEAN NOT NULL DEFAULT FALSE,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    revision BIGINT,
    last_poll_ms BIGINT,
    last_error TEXT,
    last_error_ms BIGINT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- Open orders as their journal events so far describe them (JSON), kept between reads of the journal.
CREATE TABLE iiko_journal_orders (
    server_id BIGINT NOT NULL REFERENCES iiko_servers (id) ON DELETE CASCADE,
    order_id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (server_id, order_id)
);
