-- A unit's closed iiko sales of one calendar day (iikoServer's OLAP, by the day orders were opened): revenue after
-- discounts as decimal text, the number of orders, and its dishes by revenue (JSON: name, amount, revenue),
-- fetched again while the day is young and once more after it ended.
CREATE TABLE iiko_daily_sales (
    unit_id BIGINT NOT NULL,
    day TEXT NOT NULL,
    revenue TEXT NOT NULL,
    orders BIGINT NOT NULL,
    dishes TEXT NOT NULL,
    final BOOLEAN NOT NULL DEFAULT FALSE,
    fetched_ms BIGINT NOT NULL,
    PRIMARY KEY (unit_id, day)
);
