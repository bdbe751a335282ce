-- Is a month whole and is it its turn? One definition, read by the calculation's exceptions
-- (checks/period_exceptions: the gates) and by the settlement DAG's wait for its inputs
-- (marts/period_inputs_pending).
CREATE SCHEMA IF NOT EXISTS staging;

-- Platforms whose contract is in force for the month: each must deliver every day of it.
CREATE OR REPLACE MACRO staging.platforms_due(p) AS TABLE
SELECT DISTINCT platform_id FROM staging.contracts_in_force(p);

-- Days of month p that no reconciled ingest window covers, per platform under contract,
-- collapsed into runs of consecutive days. A window row exists only after its records
-- reconciled with the platform's manifest (settlement.ingest.land); windows are merged into
-- covered intervals first, so an hourly, daily or monthly window all count.
CREATE OR REPLACE MACRO staging.ingest_gaps(p) AS TABLE
WITH bounds AS (
    SELECT CAST(strptime(p, '%Y-%m') AS TIMESTAMP) AS month_start,
           CAST(strptime(p, '%Y-%m') AS TIMESTAMP) + INTERVAL 1 MONTH AS month_end
),
windows AS (
    SELECT DISTINCT w.platform_id, w.window_start AS s, w.window_end AS e
    FROM raw.ingest_windows AS w, bounds AS b
    WHERE w.window_end > b.month_start AND w.window_start < b.month_end
      AND w.received = w.reported_count
),
ordered AS (
    SELECT *, max(e) OVER (PARTITION BY platform_id ORDER BY s, e
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
    FROM windows
),
islands AS (
    SELECT *, sum(CASE WHEN reach IS NULL OR s > reach THEN 1 ELSE 0 END)
                  OVER (PARTITION BY platform_id ORDER BY s, e) AS island
    FROM ordered
),
covered AS (
    SELECT platform_id, min(s) AS s, max(e) AS e FROM islands GROUP BY platform_id, island
),
days AS (
    SELECT d.day, d.day + INTERVAL 1 DAY AS day_end
    FROM bounds AS b,
         generate_series(b.month_start, b.month_end - INTERVAL 1 DAY, INTERVAL 1 DAY) AS d(day)
),
missing AS (
    SELECT due.platform_id, d.day
    FROM staging.platforms_due(p) AS due CROSS JOIN days AS d
    WHERE NOT EXISTS (SELECT 1 FROM covered AS c
                      WHERE c.platform_id = due.platform_id AND c.s <= d.day AND c.e >= d.day_end)
),
runs AS (
    SELECT platform_id, day,
           day - to_days(CAST(row_number() OVER (PARTITION BY platform_id ORDER BY day) AS INTEGER)) AS run_key
    FROM missing
)
SELECT platform_id, CAST(min(day) AS DATE) AS first_day, CAST(max(day) AS DATE) AS last_day,
       count(*) AS n_days
FROM runs
GROUP BY platform_id, run_key;

-- The month before p, when p must wait for it: it is not closed, no person waived the wait,
-- and it had something to settle (an ingest window, a generation or a calculation). Before a
-- platform's first delivery there is nothing to wait for, so the first month needs no waiver.
CREATE OR REPLACE MACRO staging.previous_period_open(p) AS TABLE
WITH prev AS (
    SELECT strftime(strptime(p, '%Y-%m') - INTERVAL 1 MONTH, '%Y-%m') AS period,
           CAST(strptime(p, '%Y-%m') - INTERVAL 1 MONTH AS TIMESTAMP) AS s,
           CAST(strptime(p, '%Y-%m') AS TIMESTAMP) AS e
)
SELECT prev.period, coalesce(sp.status, 'open') AS status
FROM prev
LEFT JOIN settlement.periods AS sp ON sp.period = prev.period
WHERE coalesce(sp.status, 'open') <> 'closed'
  AND NOT EXISTS (SELECT 1 FROM settlement.order_waivers AS w
                  WHERE w.period = p AND w.previous_period = prev.period)
  AND (sp.period IS NOT NULL
       OR EXISTS (SELECT 1 FROM raw.ingest_windows AS w
                  WHERE w.window_end > prev.s AND w.window_start < prev.e)
       OR EXISTS (SELECT 1 FROM raw.generations AS g
                  WHERE g.created_at >= prev.s AND g.created_at < prev.e));

-- Closed months after p: p can no longer be settled (its late data is paid as adjustments in
-- the next open month instead).
CREATE OR REPLACE MACRO staging.later_periods_closed(p) AS TABLE
SELECT period FROM settlement.periods WHERE status = 'closed' AND period > p;

-- Generations of month p that have neither attribution shares nor a recorded rejection.
CREATE OR REPLACE MACRO staging.unattributed_in(p) AS TABLE
SELECT g.*
FROM staging.generations_in(p) AS g
WHERE NOT EXISTS (SELECT 1 FROM staging.shares AS s
                  WHERE s.platform_id = g.platform_id AND s.generation_id = g.generation_id)
  AND NOT EXISTS (SELECT 1 FROM attribution.rejections AS r
                  WHERE r.platform_id = g.platform_id AND r.generation_id = g.generation_id);
