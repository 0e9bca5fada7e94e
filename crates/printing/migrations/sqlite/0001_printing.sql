-- The outcome of the latest attempts at each printer, for the printers page.
CREATE TABLE printer_health (
    printer_id BIGINT PRIMARY KEY REFERENCES printers (id) ON DELETE CASCADE,
    last_success_ms BIGINT,
    last_error TEXT,
    last_error_ms BIGINT
);
