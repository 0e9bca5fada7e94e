-- What Telegram said about a chat: a chat that blocked or removed the bot is kept, with its routes, but the
-- fan-out skips it until someone brings it back on the chats page.
ALTER TABLE directory_chats ADD COLUMN inactive_ms BIGINT;
ALTER TABLE directory_chats ADD COLUMN inactive_reason TEXT;
-- A route may name a forum topic of its chat (`message_thread_id`).
ALTER TABLE directory_routes ADD COLUMN thread_id BIGINT;
-- English labels: tillwire's own report types have them; the original's are Russian only.
ALTER TABLE directory_report_types ADD COLUMN verbose_name_en TEXT;
