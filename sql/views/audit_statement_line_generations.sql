-- Auditor view: from a statement line to the generation events behind its output royalty,
-- with the attribution run, the model version and the contract. The training royalty part
-- of a line is spread over the model's training manifest and has no single generation; see
-- audit.statement_line_training.
CREATE OR REPLACE VIEW audit.statement_line_generations AS
SELECT
    l.period,
    l.platform_id,
    l.rights_holder_id,
    l.work_id,
    l.right_type,
    l.amount AS line_amount,
    l.run_id AS settlement_run_id,
    g.generation_id,
    g.created_at,
    g.revenue_amount,
    g.revenue_currency,
    s.share,
    s.rank,
    s.run_id AS attribution_run_id,
    s.method,
    s.model_version,
    p.contract_id,
    p.contract_version
FROM settlement.statement_lines AS l
JOIN settlement.pools AS p USING (period, platform_id)
JOIN staging.shares AS s ON s.platform_id = l.platform_id AND s.work_id = l.work_id AND NOT s.is_residual
JOIN staging.generations AS g
  ON g.platform_id = s.platform_id AND g.generation_id = s.generation_id AND g.period = l.period;
