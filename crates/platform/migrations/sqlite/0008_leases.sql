-- Named leases: which instance owns a piece of outside work (a register to collect, a device to poll) and until
-- when. An owner renews its lease well before it runs out; when it dies, another instance takes it over.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
