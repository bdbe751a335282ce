-- Which holder's works each generation of a period drew on (non-residual shares), with the
-- share: the one definition the monitoring rules (sql/loads/alerts_*.sql) read.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE OR REPLACE MACRO staging.holder_work_use(p) AS TABLE
SELECT DISTINCT sp.rights_holder_id, s.work_id, s.platform_id, s.generation_id, s.share
FROM staging.generations_in(p) AS g
JOIN staging.shares AS s USING (platform_id, generation_id)
JOIN staging.splits_in_force(p) AS sp ON sp.work_id = s.work_id
WHERE NOT s.is_residual;
