-- Counting a unit's events of some kinds over a day (the daily summary's printer and collector trouble) reads
-- this index instead of every event ever recorded.
CREATE INDEX domain_events_by_unit ON domain_events (unit_id, created_ms);
