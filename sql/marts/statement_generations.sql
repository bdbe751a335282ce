-- Per-generation detail of one holder's statement for a period, read from the amounts the
-- calculation stored (settlement.generation_amounts): one row per generation that drew on one
-- of the holder's works (its output royalty), and one row per statement line for the training
-- royalty (spread over the model's training manifest, it has no single generation). `exact` is
-- the holder's exact part; `amount` divides the statement line's cents over the line's rows by
-- largest remainder, so a line's rows add up to the line to the cent. A generation the platform
-- delivered as audio names its file (content-addressed in the lake) and the sha256 it was
-- checked against at ingest, so a holder can find and verify the very recording. `paid_by`
-- says which rule paid a generation by attribution and the statistic it passed
-- (attribution.share_rules, as the run stored it). `catalog_share` is the share of the
-- generation attributable to the holder's whole catalog, where the platform's contract names a
-- group method (attribution.group_shares, as the run stored it; informational, it pays nothing).
-- Params: $period, $rights_holder_id.
WITH lines AS (
    SELECT platform_id, work_id, right_type, amount, currency
    FROM settlement.statement_lines
    WHERE period = $period AND rights_holder_id = $rights_holder_id
),
terms AS (
    SELECT p.platform_id, c.publishing_weight, c.master_weight
    FROM settlement.pools AS p
    JOIN ref.contracts AS c ON c.contract_id = p.contract_id AND c.version = p.contract_version
    WHERE p.period = $period
),
splits AS (
    SELECT work_id, right_type, share FROM staging.splits_in_force($period) WHERE rights_holder_id = $rights_holder_id
),
output_rows AS (
    SELECT l.platform_id, l.work_id, l.right_type, 'output' AS royalty, ga.generation_id, ga.territory,
           ga.revenue_amount, ga.revenue_currency, ga.fx_rate, ga.fee, ga.pool_exact AS generation_pool,
           s.share AS attribution_share,
           CASE l.right_type WHEN 'publishing' THEN t.publishing_weight ELSE t.master_weight END AS right_weight,
           sp.share AS holder_split,
           staging.holder_part(CAST(ga.output_pool_exact * s.share AS DECIMAL(38, 18)),
                               CASE l.right_type WHEN 'publishing' THEN t.publishing_weight ELSE t.master_weight END,
                               sp.share) AS exact,
           s.run_id AS attribution_run_id, l.amount AS line_amount, l.currency,
           d.paid_by_note AS paid_by, d.rule AS share_rule, d.alpha, d.min_confidence, d.confidence,
           d.p_value, gs.share AS catalog_share, gs.method AS catalog_share_method
    FROM lines AS l
    JOIN terms AS t USING (platform_id)
    JOIN staging.shares AS s ON s.platform_id = l.platform_id AND s.work_id = l.work_id AND NOT s.is_residual
    JOIN settlement.generation_amounts AS ga
      ON ga.period = $period AND ga.platform_id = s.platform_id AND ga.generation_id = s.generation_id
    JOIN splits AS sp ON sp.work_id = l.work_id AND sp.right_type = l.right_type
    -- which rule paid the generation by attribution, as its run stored it
    LEFT JOIN staging.share_rules AS d
      ON d.platform_id = s.platform_id AND d.generation_id = s.generation_id AND d.run_id = s.run_id
    -- the share of the generation attributable to this holder's catalog, as its run stored it
    LEFT JOIN attribution.group_shares AS gs
      ON gs.platform_id = s.platform_id AND gs.generation_id = s.generation_id
     AND gs.run_id = s.run_id AND gs.rights_holder_id = $rights_holder_id
),
training_rows AS (
    SELECT l.platform_id, l.work_id, l.right_type, 'training' AS royalty, NULL AS generation_id, NULL AS territory,
           NULL AS revenue_amount, NULL AS revenue_currency, NULL AS fx_rate, NULL AS fee, NULL AS generation_pool,
           NULL AS attribution_share, NULL AS right_weight, NULL AS holder_split,
           sl.training_exact AS exact, NULL AS attribution_run_id, l.amount AS line_amount, l.currency,
           NULL AS paid_by, NULL AS share_rule, NULL AS alpha, NULL AS min_confidence, NULL AS confidence,
           NULL AS p_value, NULL AS catalog_share, NULL AS catalog_share_method
    FROM lines AS l
    JOIN settlement.statement_lines AS sl
      ON sl.period = $period AND sl.rights_holder_id = $rights_holder_id AND sl.platform_id = l.platform_id
     AND sl.work_id = l.work_id AND sl.right_type = l.right_type
    WHERE sl.training_exact <> 0 OR NOT EXISTS (
        SELECT 1 FROM output_rows AS o
        WHERE o.platform_id = l.platform_id AND o.work_id = l.work_id AND o.right_type = l.right_type)
),
items AS (
    SELECT *, {'platform_id': platform_id, 'work_id': work_id, 'right_type': right_type} AS grp,
           [royalty, coalesce(generation_id, '')] AS tie,
           -- weights in units of 1e-12 of the currency: fine enough, and cents x weight fits HUGEINT
           CAST(CAST(exact AS DECIMAL(38, 12)) * CAST(1000000000000 AS DECIMAL(13, 0)) AS HUGEINT) AS weight,
           CAST(line_amount * 100 AS HUGEINT) AS target_cents
    FROM (SELECT * FROM output_rows UNION ALL BY NAME SELECT * FROM training_rows)
)
SELECT a.platform_id, a.royalty, a.generation_id, strftime(g.created_at, '%Y-%m-%dT%H:%M:%SZ') AS created_at,
       a.territory, a.work_id, w.iswc, w.isrc, a.right_type, a.revenue_amount, a.revenue_currency, a.fx_rate,
       a.fee, CAST(a.generation_pool AS DECIMAL(38, 9)) AS generation_pool, a.attribution_share, a.right_weight,
       a.holder_split, CAST(a.exact AS DECIMAL(38, 9)) AS exact_royalty, a.amount, a.currency,
       a.attribution_run_id, a.paid_by, a.share_rule, a.alpha, a.min_confidence, a.confidence, a.p_value,
       a.catalog_share, a.catalog_share_method, o.output_kind, o.output_audio_path AS output_audio_file, o.output_audio_sha256
FROM staging.apportion('items') AS a
JOIN ref.works AS w ON w.work_id = a.work_id
LEFT JOIN raw.generations AS g ON g.platform_id = a.platform_id AND g.generation_id = a.generation_id
LEFT JOIN staging.generation_outputs AS o ON o.platform_id = a.platform_id AND o.generation_id = a.generation_id
ORDER BY a.platform_id, a.work_id, a.right_type, a.royalty, a.generation_id;
