-- An order kept by a POS with orders of its own (iiko): which one it is (its source and id, unique in the unit),
-- so a later change of it updates this order, and the number that POS gave it, shown beside the queue number.
ALTER TABLE orders ADD COLUMN external_ref TEXT;
ALTER TABLE orders ADD COLUMN external_number TEXT;
CREATE UNIQUE INDEX orders_external_ref ON orders (unit_id, external_ref) WHERE external_ref IS NOT NULL;
