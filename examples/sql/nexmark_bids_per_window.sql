-- The main example: Nexmark bids, counted per channel in 10-second tumbling windows.
-- Needs nothing else; ends when the 1,000,000 generated events are processed.
--   weir run examples/sql/nexmark_bids_per_window.sql

CREATE TABLE bid (
    auction  BIGINT,
    bidder   BIGINT,
    price    BIGINT,
    channel  STRING,
    url      STRING,
    dateTime TIMESTAMP(3),
    extra    STRING,
    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
    'connector' = 'nexmark',
    'table' = 'bid',
    'events.num' = '1000000',
    'first-event.rate' = '10000',
    'next-event.rate' = '10000'
);

CREATE TABLE bids_per_channel (
    window_start TIMESTAMP(3),
    window_end   TIMESTAMP(3),
    channel      STRING,
    bids         BIGINT,
    max_price    BIGINT,
    avg_price    BIGINT
) WITH ('connector' = 'print');

INSERT INTO bids_per_channel
SELECT window_start, window_end, channel, COUNT(*), MAX(price), AVG(price)
FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, channel;
