-- Dedup and validate a staged file drop in one vectorised pass. The rules and their order
-- are those of settlement.ingest.validate, so a record breaks the same rule whichever way
-- it came (API page or file).

-- One record per generation id: the same record delivered twice counts once (hash
-- aggregation, not a sort); two different records under one id are both quarantined.
CREATE OR REPLACE TEMP TABLE drop_distinct AS
WITH payloads AS (
    SELECT
        payload_key,
        any_value(COLUMNS(* EXCLUDE (payload_key, source, line_no))),
        arg_min(source, source || ':' || lpad(CAST(line_no AS VARCHAR), 12, '0')) AS source,
        min(line_no) AS line_no
    FROM drop_parsed
    GROUP BY payload_key
),
ids AS (
    SELECT coalesce(generation_id, payload_key) AS id, count(*) AS versions
    FROM payloads
    GROUP BY ALL
    HAVING count(*) > 1
)
SELECT p.*, coalesce(ids.versions, 1) AS versions
FROM payloads AS p
LEFT JOIN ids ON ids.id = coalesce(p.generation_id, p.payload_key);

CREATE OR REPLACE TEMP TABLE drop_checked AS
WITH typed AS MATERIALIZED (
    SELECT
        *,
        'generation ' || CASE WHEN generation_id IS NULL THEN 'without generation_id'
            ELSE '''' || generation_id || '''' END AS who,
        concat_ws(', ',
            CASE WHEN generation_id IS NULL THEN 'generation_id' END,
            CASE WHEN model_version IS NULL THEN 'model_version' END,
            CASE WHEN created_at_text IS NULL THEN 'created_at' END,
            CASE WHEN style IS NULL THEN 'style' END,
            CASE WHEN NOT has_output THEN 'output' END,
            CASE WHEN territory IS NULL THEN 'territory' END,
            CASE WHEN NOT has_revenue THEN 'revenue' END
        ) AS missing,
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
            WHEN missing <> '' THEN 'missing_field'
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
SELECT
    *,
    who || ': ' || CASE rule
        WHEN 'not_an_object' THEN 'record is not a JSON object (' || source || ' line ' || line_no || ')'
        WHEN 'conflicting_duplicate' THEN 'delivered twice with different content'
        WHEN 'missing_field' THEN 'missing field(s) ' || missing
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
    END AS reason
FROM ruled;
