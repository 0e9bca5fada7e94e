-- A claim reads the oldest open jobs in id order; this index holds only those, so the read is as long as the window
-- whatever the history, and not a sort of every pending job.
CREATE INDEX jobs_open ON jobs (id) WHERE state IN ('pending', 'running');
