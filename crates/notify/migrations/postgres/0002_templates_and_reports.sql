-- Message templates an admin replaced, per kind of message and language (the built-in ones live in the code).
CREATE TABLE notify_templates (
    template TEXT NOT NULL,
    lang TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (template, lang)
);

-- The daily summaries written, one per unit and business day, so that of several instances one writes it.
CREATE TABLE notify_summaries (
    unit_id BIGINT NOT NULL,
    day TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (unit_id, day)
);

-- Settings made on the admin page: the bot token, sealed with the install's secret box.
CREATE TABLE notify_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
