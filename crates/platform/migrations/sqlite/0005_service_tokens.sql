-- Service tokens: one mechanism for every credential a program presents (a till's device key, a service's API
-- token). Only the SHA-256 of a token is kept (a fast hash is enough for 40 random characters and keeps the hot
-- path cheap); the prefix lets people recognise it. scope is 'admin', 'device' (with the unit it acts for) or an
-- area's name. Nothing is deleted: a revoked token keeps its row so the audit can name it.
CREATE TABLE service_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    unit_id BIGINT,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_ms BIGINT
);
CREATE INDEX service_tokens_unit ON service_tokens (unit_id);

-- Who issued or revoked which token, and when.
CREATE TABLE token_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    token_id BIGINT NOT NULL,
    detail TEXT NOT NULL
);
