-- Nexmark q5, "hot items": the auctions with the most bids in each 10-second window sliding
-- every 2 seconds. Runs on 100,000 generated events and prints the hottest auctions.
--   weir run examples/sql/nexmark_q5.sql
--
-- The query is nexmark-flink's q5.sql; only the sink is `print` instead of `blackhole`. As in
-- Flink it runs without a changelog: the bid counts per auction and window are a window
-- aggregation, the maximum per window is a window aggregation over their window columns
-- (`starttime`, `endtime`), and the join of the two on both window bounds is a window join,
-- all emitting when the watermark passes the window's end (`weir explain` shows the plan).

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
    'events.num' = '100000',
    'first-event.rate' = '10000',
    'next-event.rate' = '10000'
);

CREATE TABLE hot_items (auction BIGINT, num BIGINT) WITH ('connector' = 'print');

INSERT INTO hot_items
SELECT AuctionBids.auction, AuctionBids.num
FROM (
    SELECT auction, COUNT(*) AS num, window_start AS starttime, window_end AS endtime
    FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
    GROUP BY auction, window_start, window_end
) AS AuctionBids
JOIN (
    SELECT MAX(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
    FROM (
        SELECT COUNT(*) AS num, window_start AS starttime, window_end AS endtime
        FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
        GROUP BY auction, window_start, window_end
    ) AS CountBids
    GROUP BY CountBids.starttime, CountBids.endtime
) AS MaxBids
ON AuctionBids.starttime = MaxBids.starttime
   AND AuctionBids.endtime = MaxBids.endtime
   AND AuctionBids.num >= MaxBids.maxn;
