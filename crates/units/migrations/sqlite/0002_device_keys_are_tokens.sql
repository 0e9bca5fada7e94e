-- Device keys become the platform's service tokens (scope 'device', with their unit); the hashes carry over, so
-- every till keeps its key. A revoked key keeps its row, revoked at the time it was made (the moment is unknown).
INSERT INTO service_tokens (name, scope, unit_id, token_hash, prefix, created_ms, created_by, revoked_ms)
SELECT name, 'device', unit_id, key_hash, prefix, created_ms, 'migration',
       CASE WHEN revoked THEN created_ms ELSE NULL END
FROM api_keys ORDER BY id;
DROP TABLE api_keys;
