-- The shares in force for each generation: those of its latest attribution run.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE OR REPLACE VIEW staging.shares AS
WITH latest AS (
    SELECT s.platform_id, s.generation_id, arg_max(s.run_id, r.finished_at) AS run_id
    FROM attribution.shares AS s
    JOIN attribution.runs AS r USING (run_id)
    GROUP BY ALL
)
SELECT s.*
FROM attribution.shares AS s
JOIN latest USING (platform_id, generation_id, run_id);
