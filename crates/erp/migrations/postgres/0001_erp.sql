-- One integration per workshop: which ERP, where, with which login (the password sealed with the installation's
-- secret box), whether it runs, and the connector's script (locators and waits) at its current version.
-- `unit_id` is the workshop's unit, whose chats hear of its failures (the default unit when NULL).
-- `worker_running` is the worker's switch (OilMat's start_worker / stop_worker), kept across restarts.
CREATE TABLE erp_integrations (
    id BIGSERIAL PRIMARY KEY,
    workshop TEXT NOT NULL UNIQUE,
    erp_type TEXT NOT NULL,
    base_url TEXT NOT NULL,
    unit_id BIGINT,
    username TEXT,
    password_sealed TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    autostart BOOLEAN NOT NULL DEFAULT FALSE,
    worker_running BOOLEAN NOT NULL DEFAULT FALSE,
    port BIGINT UNIQUE,
    max_attempts BIGINT NOT NULL,
    task_timeout_secs BIGINT NOT NULL,
    script TEXT NOT NULL,
    script_version BIGINT NOT NULL DEFAULT 1,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- Every version of every integration's script, so a change can be seen and taken back.
CREATE TABLE erp_script_versions (
    integration_id BIGINT NOT NULL REFERENCES erp_integrations (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    script TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_ms BIGINT NOT NULL,
    PRIMARY KEY (integration_id, version)
);

-- OilMat's orders, one per (integration, unique_id): the status its clients read, why it failed, when, and how
-- many attempts. A login sent with an order (when the integration has none) is kept sealed until the order ends.
CREATE TABLE erp_orders (
    id BIGSERIAL PRIMARY KEY,
    integration_id BIGINT NOT NULL REFERENCES erp_integrations (id) ON DELETE CASCADE,
    unique_id TEXT NOT NULL,
    dealer TEXT NOT NULL DEFAULT '',
    case_nr TEXT NOT NULL DEFAULT '',
    product_nr TEXT NOT NULL DEFAULT '',
    amount BIGINT,
    status TEXT NOT NULL,
    reason TEXT,
    message TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    credentials_sealed TEXT,
    job_id BIGINT,
    imported BOOLEAN NOT NULL DEFAULT FALSE,
    received_ms BIGINT NOT NULL,
    started_ms BIGINT,
    finished_ms BIGINT,
    updated_ms BIGINT NOT NULL,
    UNIQUE (integration_id, unique_id)
);
CREATE INDEX erp_orders_by_integration ON erp_orders (integration_id, id);

-- What the browser showed when an attempt failed: a screenshot and the page's DOM, shown on the order's page.
CREATE TABLE erp_evidence (
    order_id BIGINT NOT NULL REFERENCES erp_orders (id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    step TEXT NOT NULL,
    screenshot BYTEA NOT NULL,
    dom TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (order_id, attempt)
);
