-- A line crossed off on a kitchen screen (when), so every screen of the station and a reload see it.
ALTER TABLE order_lines ADD COLUMN crossed_ms BIGINT;
