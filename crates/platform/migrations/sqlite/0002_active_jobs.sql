-- A job waits while an older job of its key is pending or running. Probing that through `jobs_key` walks past
-- every finished job of the key first, so claiming slowed down with each ticket a printer had printed; this index
-- holds only the unfinished jobs, so the probe is one step.
CREATE INDEX jobs_active_key ON jobs (job_key, id) WHERE state IN ('pending', 'running');
