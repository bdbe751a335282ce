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
    currency AS revenue_currency
FROM drop_checked
WHERE rule IS NULL;
