-- A non-windowed GROUP BY: an updating result, printed as a changelog (+I, -U, +U) like Flink.
--   weir run examples/sql/changelog_counts.sql

CREATE TABLE orders (
    id       BIGINT,
    customer INT,
    amount   INT
) WITH (
    'connector' = 'datagen',
    'number-of-rows' = '20',
    'rows-per-second' = '100',
    'fields.id.kind' = 'sequence',
    'fields.id.start' = '1',
    'fields.id.end' = '20',
    'fields.customer.min' = '1',
    'fields.customer.max' = '3',
    'fields.amount.min' = '1',
    'fields.amount.max' = '100'
);

CREATE TABLE totals (customer INT, orders BIGINT, total INT) WITH ('connector' = 'print');

INSERT INTO totals
SELECT customer, COUNT(*), SUM(amount) FROM orders GROUP BY customer;
