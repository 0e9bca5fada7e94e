-- A status that cancels the order: the screens ask before moving an order there. ELQ's own "Отменен" is one.
ALTER TABLE statuses ADD COLUMN cancels BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE statuses SET cancels = TRUE WHERE name IN ('Отменен', 'Отменён', 'Отмена', 'Cancelled', 'Canceled');
