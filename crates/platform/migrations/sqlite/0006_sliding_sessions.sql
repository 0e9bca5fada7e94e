-- Sessions slide: each is renewed on use for its own idle period, up to an absolute lifetime from created_ms.
ALTER TABLE sessions ADD COLUMN idle_ms BIGINT NOT NULL DEFAULT 43200000;
