-- Which lifecycle tables this warehouse has (approvals, closes and adjustments arrive with a
-- later migration; the finance report shows what exists).
SELECT table_schema || '.' || table_name AS name
FROM information_schema.tables
WHERE table_schema = 'settlement' AND table_name IN ('approvals', 'closes', 'adjustments', 'deliveries')
ORDER BY name;
