-- Minutes an order may stay in a status before its card turns amber (red at twice that); NULL: no alert.
ALTER TABLE statuses ADD COLUMN alert_minutes INTEGER;
