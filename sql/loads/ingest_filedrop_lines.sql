-- Raw-line path, for files the fast path cannot type (a malformed line, a field of the
-- wrong JSON type): each line (drop_lines) is parsed on its own, so one bad line is one
-- quarantined record, not a failed file.
INSERT INTO drop_parsed BY NAME
WITH lists AS MATERIALIZED (
    -- One parse per line: a list of paths is extracted in a single pass over the text.
    SELECT
        line,
        line_no,
        json_valid(line) AND starts_with(ltrim(line), '{') AS is_object,
        json_extract_string(line, [
            '$.generation_id', '$.model_version', '$.created_at', '$.style', '$.prompt',
            '$.territory', '$.revenue.amount', '$.revenue.currency', '$.schema_version'
        ]) AS s,
        json_extract(line, ['$.output', '$.revenue', '$.output.tokens']) AS j
    FROM drop_lines
),
typed AS MATERIALIZED (
    SELECT
        *,
        try_cast(j[3] AS INTEGER[]) AS tokens,
        coalesce(json_type(j[1]), 'NULL') <> 'NULL' AS has_output,
        coalesce(json_type(j[2]), 'NULL') <> 'NULL' AS has_revenue
    FROM lists
)
SELECT
    line,
    $source AS source,
    line_no,
    $file_index * 10000000000 + line_no AS ord,
    is_object,
    nullif(s[1], '') AS generation_id,
    nullif(s[2], '') AS model_version,
    nullif(s[3], '') AS created_at_text,
    nullif(s[4], '') AS style,
    s[5] AS prompt,
    has_output,
    nullif(s[6], '') AS territory,
    has_revenue,
    s[7] AS amount_text,
    s[8] AS currency,
    coalesce(s[9], '1') AS schema_version,
    tokens
FROM typed;
