-- The iikoServer key a session holds (sealed), written before it is used and deleted after its logout: a key
-- still here at the next session's start was left by a killed process, and is logged out to free its licence slot.
CREATE TABLE iiko_server_keys (
    server TEXT PRIMARY KEY,
    key_sealed TEXT NOT NULL,
    taken_ms BIGINT NOT NULL
);
