-- Paired screens: a board TV, a kitchen tablet or an operator terminal an admin pairs once. Until paired it has a
-- short pairing code (only its SHA-256 kept, valid for a while); pairing gives the screen a service token (scope
-- 'screen'), kept in its browser. The screen signs its page actions with its own CSRF token.
CREATE TABLE screens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    unit_id BIGINT NOT NULL,
    role TEXT NOT NULL,
    opens TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    token_id BIGINT UNIQUE REFERENCES service_tokens (id),
    pairing_hash TEXT UNIQUE,
    pairing_expires_ms BIGINT,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    paired_ms BIGINT,
    last_seen_ms BIGINT,
    revoked_ms BIGINT
);
