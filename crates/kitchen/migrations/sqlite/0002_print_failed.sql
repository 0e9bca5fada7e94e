-- Set while the order's ticket cannot be printed, so the operator screen can show it and offer a reprint.
ALTER TABLE orders ADD COLUMN print_failed BOOLEAN NOT NULL DEFAULT FALSE;
