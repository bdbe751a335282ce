-- Auditor view: the training-royalty part of each statement line: which model versions'
-- manifests name the work, how many training examples it has there, and the pool's residual.
CREATE OR REPLACE VIEW audit.statement_line_training AS
SELECT
    l.period,
    l.platform_id,
    l.rights_holder_id,
    l.work_id,
    l.right_type,
    l.training_exact,
    m.model_version,
    count(*) AS training_examples_of_work
FROM settlement.statement_lines AS l
JOIN ref.model_versions AS mv ON mv.platform_id = l.platform_id
JOIN ref.training_manifest AS m ON m.model_version = mv.model_version AND m.work_id = l.work_id
GROUP BY ALL;
