-- Regions and departments group units for the directory; they are not the kitchen's stations.
-- No cascades from them: deleting a region or department that still has units is refused.
CREATE TABLE directory_regions (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE directory_departments (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uuid TEXT UNIQUE
);

-- The directory's facts about a shared unit (one row per unit of the `units` table).
CREATE TABLE directory_unit_info (
    unit_id BIGINT PRIMARY KEY REFERENCES units (id) ON DELETE CASCADE,
    uuid TEXT NOT NULL UNIQUE,
    region_id BIGINT NOT NULL REFERENCES directory_regions (id),
    department_id BIGINT NOT NULL REFERENCES directory_departments (id),
    office_manager_account_name TEXT,
    dodo_is_api_account_name TEXT,
    shift_manager_account_name TEXT
);
CREATE INDEX directory_unit_info_region ON directory_unit_info (region_id);
CREATE INDEX directory_unit_info_department ON directory_unit_info (department_id);

CREATE TABLE directory_report_types (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    verbose_name TEXT NOT NULL,
    parent_id BIGINT REFERENCES directory_report_types (id) ON DELETE SET NULL,
    priority BIGINT NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT FALSE
);

-- Access codes are kept as salted SHA-256 only (`salt$hex`); the plain code is shown once when generated.
CREATE TABLE directory_roles (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    access_code_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE directory_role_units (
    role_id BIGINT NOT NULL REFERENCES directory_roles (id) ON DELETE CASCADE,
    unit_id BIGINT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, unit_id)
);

CREATE TABLE directory_role_report_types (
    role_id BIGINT NOT NULL REFERENCES directory_roles (id) ON DELETE CASCADE,
    report_type_id BIGINT NOT NULL REFERENCES directory_report_types (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, report_type_id)
);

CREATE TABLE directory_chats (
    id BIGSERIAL PRIMARY KEY,
    chat_id BIGINT NOT NULL UNIQUE,
    username TEXT,
    title TEXT NOT NULL,
    chat_type TEXT NOT NULL,
    role_id BIGINT REFERENCES directory_roles (id) ON DELETE SET NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE directory_routes (
    id BIGSERIAL PRIMARY KEY,
    report_type_id BIGINT NOT NULL REFERENCES directory_report_types (id) ON DELETE CASCADE,
    unit_id BIGINT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    chat_id BIGINT NOT NULL REFERENCES directory_chats (id) ON DELETE CASCADE,
    UNIQUE (report_type_id, unit_id, chat_id)
);
-- The notification fan-out: chats for (unit, type).
CREATE INDEX directory_routes_fanout ON directory_routes (unit_id, report_type_id, chat_id);
CREATE INDEX directory_routes_chat ON directory_routes (chat_id, report_type_id, unit_id);

-- Service clients' API tokens: only the SHA-256 is stored.
CREATE TABLE directory_tokens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_ms BIGINT NOT NULL
);

CREATE TABLE directory_audit (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
