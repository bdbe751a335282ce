-- The loadable rows of a staged file drop, in the shape of raw.generations' staging table.
SELECT
    $platform_id AS platform_id,
    generation_id,
    model_version,
    timezone('UTC', created_tz) AS created_at,
    style,
    prompt,
    tokens AS output_tokens,
    territory,
    CAST(amount_wide AS DECIMAL(18, 6)) AS revenue_amount,
    currency AS revenue_currency,
    -- file drops carry tokens only (docs/ingest.md); audio outputs come over the API
    'tokens' AS output_kind,
    CAST(NULL AS VARCHAR) AS output_audio_path,
    CAST(NULL AS VARCHAR) AS output_audio_sha256,
    CAST(NULL AS BIGINT) AS output_audio_bytes,
    CAST(NULL AS INTEGER) AS output_audio_sample_rate,
    CAST(NULL AS DOUBLE) AS output_audio_duration_s
FROM drop_checked
WHERE rule IS NULL;
