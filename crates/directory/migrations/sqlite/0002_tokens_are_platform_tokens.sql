-- The directory's service tokens become the platform's (scope 'directory'); the hashes carry over, so every
-- service keeps its token. A revoked one keeps its row, revoked at the time it was made (the moment is unknown).
INSERT INTO service_tokens (name, scope, unit_id, token_hash, prefix, created_ms, created_by, revoked_ms)
SELECT name, 'directory', NULL, token_hash, prefix, created_ms, 'migration',
       CASE WHEN revoked THEN created_ms ELSE NULL END
FROM directory_tokens ORDER BY id;
DROP TABLE directory_tokens;
