-- Dedup and validate a staged file drop in one vectorised pass. The rules and their order
-- are those of settlement.ingest.validate, so a record breaks the same rule whichever way
-- it came (API page or file).

-- One record per generation id: the same record delivered twice counts once (its first
-- delivery); two different records under one id are both quarantined. Only rows whose id
-- comes more than once (or that have none) are compared by content, so the common case, a
-- drop without copies, costs one hash aggregation on the id.
CREATE OR REPLACE TEMP TABLE drop_distinct AS
WITH multi AS (
    SELECT generation_id FROM drop_parsed
    WHERE generation_id IS NOT NULL
    GROUP BY ALL
    HAVING count(*) > 1
),
suspects AS MATERIALIZED (
    SELECT
        d.*,
        CASE WHEN d.is_object
            THEN hash(d.generation_id, d.model_version, d.created_at_text, d.style, d.prompt, d.tokens,
                      d.territory, d.amount_text, d.currency, d.schema_version, d.has_output, d.has_revenue)
            ELSE hash(d.line) END AS payload_key
    FROM drop_parsed AS d
    WHERE d.generation_id IS NULL OR d.generation_id IN (SELECT generation_id FROM multi)
),
firsts AS (
    SELECT min(ord) AS ord FROM suspects GROUP BY payload_key
),
kept AS (
    SELECT s.* FROM suspects AS s SEMI JOIN firsts AS f ON s.ord = f.ord
),
versions AS (
    SELECT generation_id, count(*) AS versions FROM kept WHERE generation_id IS NOT NULL GROUP BY ALL
)
SELECT d.*, NULL::UBIGINT AS payload_key, 1 AS versions
FROM drop_parsed AS d ANTI JOIN multi AS m ON d.generation_id = m.generation_id
WHERE d.generation_id IS NOT NULL
UNION ALL BY NAME
SELECT k.*, coalesce(v.versions, 1) AS versions
FROM kept AS k LEFT JOIN versions AS v ON k.generation_id = v.generation_id;

CREATE OR REPLACE TEMP TABLE drop_checked AS
WITH typed AS MATERIALIZED (
    SELECT
        *,
        generation_id IS NULL OR model_version IS NULL OR created_at_text IS NULL OR style IS NULL
            OR NOT has_output OR territory IS NULL OR NOT has_revenue AS is_missing,
        CASE WHEN regexp_matches(created_at_text, '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$')
            THEN try_cast(created_at_text AS TIMESTAMPTZ) END AS created_tz,
        try_cast(amount_text AS DECIMAL(38, 12)) AS amount_wide
    FROM drop_distinct
),
ruled AS (
    SELECT
        *,
        CASE
            WHEN NOT is_object THEN 'not_an_object'
            WHEN versions > 1 THEN 'conflicting_duplicate'
            WHEN is_missing THEN 'missing_field'
            WHEN schema_version <> '1' THEN 'schema_version'
            WHEN created_tz IS NULL THEN 'bad_timestamp'
            WHEN NOT (created_tz >= $window_start AND created_tz < $window_end) THEN 'outside_window'
            WHEN NOT list_contains($licensed, model_version) THEN 'unknown_model_version'
            WHEN amount_wide IS NULL OR currency IS NULL THEN 'bad_revenue'
            WHEN amount_wide < 0 THEN 'negative_revenue'
            WHEN amount_wide <> round(amount_wide, 6) THEN 'revenue_precision'
            WHEN NOT list_contains($currencies, currency) THEN 'unknown_currency'
            WHEN tokens IS NULL OR len(tokens) = 0 OR list_count(tokens) <> len(tokens) THEN 'bad_output'
            WHEN NOT regexp_full_match(territory, '[A-Z]{2}') THEN 'bad_territory'
        END AS rule
    FROM typed
)
-- Words only for the rejected: building them for every row cost as much as the checks.
SELECT
    *,
    CASE WHEN rule IS NOT NULL THEN
        'generation ' || CASE WHEN generation_id IS NULL THEN 'without generation_id'
            ELSE '''' || generation_id || '''' END || ': ' || CASE rule
        WHEN 'not_an_object' THEN 'record is not a JSON object (' || source || ' line ' || line_no || ')'
        WHEN 'conflicting_duplicate' THEN 'delivered twice with different content'
        WHEN 'missing_field' THEN 'missing field(s) ' || concat_ws(', ',
            CASE WHEN generation_id IS NULL THEN 'generation_id' END,
            CASE WHEN model_version IS NULL THEN 'model_version' END,
            CASE WHEN created_at_text IS NULL THEN 'created_at' END,
            CASE WHEN style IS NULL THEN 'style' END,
            CASE WHEN NOT has_output THEN 'output' END,
            CASE WHEN territory IS NULL THEN 'territory' END,
            CASE WHEN NOT has_revenue THEN 'revenue' END)
        WHEN 'schema_version' THEN 'schema_version ' || schema_version || ' not supported'
        WHEN 'bad_timestamp' THEN 'created_at ' || coalesce(created_at_text, 'null') || ' is not a time with a UTC offset'
        WHEN 'outside_window' THEN 'created_at ' || created_at_text || ' outside window ['
            || strftime($window_start, '%Y-%m-%dT%H:%M:%SZ') || ', ' || strftime($window_end, '%Y-%m-%dT%H:%M:%SZ') || ')'
        WHEN 'unknown_model_version' THEN 'model_version ''' || model_version || ''' is not licensed'
        WHEN 'bad_revenue' THEN 'revenue amount ' || coalesce(amount_text, 'null') || ' / currency '
            || coalesce(currency, 'null') || ' is not {amount, currency}'
        WHEN 'negative_revenue' THEN 'revenue amount ' || amount_text || ' is negative'
        WHEN 'revenue_precision' THEN 'revenue ' || amount_text || ' has more than 6 decimals'
        WHEN 'unknown_currency' THEN 'currency ''' || currency || ''' is not supported'
        WHEN 'bad_output' THEN 'output.tokens must be a non-empty list of integers'
        WHEN 'bad_territory' THEN 'territory ''' || territory || ''' is not an ISO 3166 alpha-2 code'
        END
    END AS reason
FROM ruled;
