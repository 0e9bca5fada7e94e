-- One iikoCloud account per organization: where, with which credentials (sealed with the installation's secret
-- box: {"api_login"} or {"api_key","app_id","client_secret"}), the authToken its webhooks carry (sealed), the
-- unit its orders go to unless a terminal group says otherwise, the tables polled with order/by_table, and
-- products mapped to ware codes by the settings file. Rows from tillwire.toml are marked and refreshed at start.
CREATE TABLE iiko_connections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    api_url TEXT NOT NULL,
    unit_id BIGINT,
    credentials_sealed TEXT NOT NULL,
    webhook_token_sealed TEXT,
    tables TEXT NOT NULL DEFAULT '[]',
    products TEXT NOT NULL DEFAULT '{}',
    from_config BOOLEAN NOT NULL DEFAULT FALSE,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- What the state page tells about a connection: the deliveries' revision cursor (and when it was read, for the
-- 3-hour window of by_revision), the last poll, webhook and error.
CREATE TABLE iiko_connection_state (
    connection_id BIGINT PRIMARY KEY REFERENCES iiko_connections (id) ON DELETE CASCADE,
    delivery_revision BIGINT,
    revision_ms BIGINT,
    last_poll_ms BIGINT,
    last_webhook_ms BIGINT,
    last_error TEXT,
    last_error_ms BIGINT
);

-- Terminal groups as iikoCloud lists them: the Windows time zone their local times are in, and the unit whose
-- queue their orders join (the connection's unit when NULL).
CREATE TABLE iiko_terminal_groups (
    organization_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    unit_id BIGINT,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id)
);

-- Products seen on orders, with the ware code each is mapped to on the mapping page (NULL: by its own code or
-- id), and how often each came, so the unmapped ones can be listed by how much they matter.
CREATE TABLE iiko_products (
    organization_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    name TEXT NOT NULL,
    code TEXT,
    ware_code TEXT,
    mapped BOOLEAN NOT NULL DEFAULT FALSE,
    seen BIGINT NOT NULL DEFAULT 0,
    last_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (organization_id, product_id)
);

-- Every event received (a webhook's, or an order a poll found newer), kept with its body until processed and
-- for a while after: its state is received, processed, skipped (an older or repeated version, an unknown
-- event type) or failed (with the reason; retry puts it back).
CREATE TABLE iiko_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id TEXT NOT NULL,
    source TEXT NOT NULL,
    event_type TEXT NOT NULL,
    order_key TEXT,
    event_timestamp BIGINT,
    received_ms BIGINT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT,
    processed_ms BIGINT
);
CREATE INDEX iiko_inbox_by_state ON iiko_inbox (state, id);

-- Each iiko order seen, by the key every door knows it by (the POS id when there is one): the newest version
-- applied to the queue (an older or equal timestamp is old news), and the production order it became.
CREATE TABLE iiko_orders (
    organization_id TEXT NOT NULL,
    order_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    cloud_id TEXT,
    applied_timestamp BIGINT NOT NULL,
    number TEXT,
    status TEXT NOT NULL,
    unit_id BIGINT,
    kitchen_order_id BIGINT,
    queue_number BIGINT,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (organization_id, order_key)
);
