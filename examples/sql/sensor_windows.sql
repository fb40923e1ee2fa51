-- Files in, files out: 10-second windows over a CSV file, written as CSV part files.
--   weir run examples/sql/sensor_windows.sql && cat /tmp/weir-sensor-windows/*

CREATE TABLE readings (
    sensor  STRING,
    ts      TIMESTAMP(3),
    celsius DOUBLE,
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = 'examples/data/sensor_readings.csv',
    'format' = 'csv'
);

CREATE VIEW warm AS SELECT sensor, ts, celsius FROM readings WHERE celsius > 19.0;

CREATE TABLE sensor_windows (
    sensor       STRING,
    window_start TIMESTAMP(3),
    window_end   TIMESTAMP(3),
    readings     BIGINT,
    max_celsius  DOUBLE,
    avg_celsius  DOUBLE
) WITH (
    'connector' = 'filesystem',
    'path' = '/tmp/weir-sensor-windows',
    'format' = 'csv'
);

INSERT INTO sensor_windows
SELECT sensor, window_start, window_end, COUNT(*), MAX(celsius), AVG(celsius)
FROM TABLE(TUMBLE(TABLE warm, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY sensor, window_start, window_end;
