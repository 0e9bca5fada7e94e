-- The bot's updates, each claimed once before it is handled, so neither a restart nor Telegram sending an update
-- again (a webhook retry, a getUpdates offset not yet confirmed) replies twice. The next getUpdates offset is the
-- newest id + 1; old rows are pruned, the newest kept.
CREATE TABLE notify_bot_updates (
    update_id BIGINT PRIMARY KEY,
    claimed_ms BIGINT NOT NULL
);
