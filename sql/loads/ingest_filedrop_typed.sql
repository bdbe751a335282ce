-- Fast path: a file already parsed into the record schema by pyarrow (drop_typed), one
-- row per record, numbered by line_no.
INSERT INTO drop_parsed BY NAME
SELECT
    NULL AS line,
    $source AS source,
    line_no,
    $file_index * 10000000000 + line_no AS ord,
    TRUE AS is_object,
    nullif(generation_id, '') AS generation_id,
    nullif(model_version, '') AS model_version,
    nullif(CAST(created_at AS VARCHAR), '') AS created_at_text,
    nullif(style, '') AS style,
    prompt,
    output IS NOT NULL AS has_output,
    nullif(territory, '') AS territory,
    revenue IS NOT NULL AS has_revenue,
    revenue.amount AS amount_text,
    revenue.currency AS currency,
    coalesce(CAST(schema_version AS VARCHAR), '1') AS schema_version,
    try_cast(output.tokens AS INTEGER[]) AS tokens
FROM drop_typed;
