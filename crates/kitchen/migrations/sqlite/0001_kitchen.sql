-- Kitchen stations (ELQ's "departments"): the parts of a shop's kitchen that prepare wares.
CREATE TABLE stations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_id BIGINT NOT NULL REFERENCES units (id),
    name TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (unit_id, name)
);

CREATE TABLE printers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_id BIGINT NOT NULL REFERENCES units (id),
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    created_ms BIGINT NOT NULL,
    UNIQUE (unit_id, name)
);

CREATE TABLE cash_registers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_id BIGINT NOT NULL REFERENCES units (id),
    number BIGINT NOT NULL,
    name TEXT NOT NULL,
    -- Deleting a printer detaches it; ELQ deleted the registers too.
    printer_id BIGINT REFERENCES printers (id) ON DELETE SET NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (unit_id, number)
);

CREATE TABLE wares (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_id BIGINT NOT NULL REFERENCES units (id),
    code TEXT NOT NULL,
    full_name TEXT NOT NULL,
    short_name TEXT NOT NULL,
    station_id BIGINT NOT NULL REFERENCES stations (id),
    catch_quantity DOUBLE PRECISION NOT NULL DEFAULT 1,
    created_ms BIGINT NOT NULL,
    UNIQUE (unit_id, code)
);

CREATE TABLE statuses (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    finished BOOLEAN NOT NULL DEFAULT FALSE,
    shown BOOLEAN NOT NULL DEFAULT TRUE,
    color TEXT NOT NULL DEFAULT 'gray',
    icon TEXT NOT NULL DEFAULT 'bi bi-bag',
    created_ms BIGINT NOT NULL
);

CREATE TABLE status_flows (
    current_status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    next_status_id BIGINT NOT NULL REFERENCES statuses (id) ON DELETE CASCADE,
    PRIMARY KEY (current_status_id, next_status_id)
);

-- One numbering sequence per unit and business day. Never purged, so numbers never repeat within a day.
CREATE TABLE day_counters (
    unit_id BIGINT NOT NULL REFERENCES units (id),
    business_day TEXT NOT NULL,
    last_number BIGINT NOT NULL,
    PRIMARY KEY (unit_id, business_day)
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_id BIGINT NOT NULL REFERENCES units (id),
    business_day TEXT NOT NULL,
    number BIGINT NOT NULL,
    status_id BIGINT NOT NULL REFERENCES statuses (id),
    cash_register_id BIGINT REFERENCES cash_registers (id) ON DELETE SET NULL,
    created_ms BIGINT NOT NULL,
    status_changed_ms BIGINT NOT NULL,
    UNIQUE (unit_id, business_day, number)
);
CREATE INDEX orders_by_day ON orders (unit_id, business_day, status_id);

-- Lines keep the ware's code and short name so history survives catalogue edits.
CREATE TABLE order_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    ware_id BIGINT REFERENCES wares (id) ON DELETE SET NULL,
    code TEXT NOT NULL,
    short_name TEXT NOT NULL,
    station_id BIGINT NOT NULL REFERENCES stations (id),
    quantity DOUBLE PRECISION NOT NULL,
    UNIQUE (order_id, code)
);

CREATE TABLE order_stations (
    order_id BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    station_id BIGINT NOT NULL REFERENCES stations (id),
    ready_ms BIGINT,
    PRIMARY KEY (order_id, station_id)
);

CREATE TABLE order_status_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status_id BIGINT,
    to_status_id BIGINT NOT NULL,
    user_id BIGINT,
    actor TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX order_status_log_order ON order_status_log (order_id);

-- Exact de-duplication of imported receipts (ELQ kept only a high-water mark).
CREATE TABLE imported_receipts (
    unit_id BIGINT NOT NULL REFERENCES units (id),
    cash_number BIGINT NOT NULL,
    shift_id BIGINT NOT NULL,
    check_date TEXT NOT NULL,
    check_id BIGINT NOT NULL,
    imported_ms BIGINT NOT NULL,
    PRIMARY KEY (unit_id, cash_number, shift_id, check_date, check_id)
);
