-- What a file drop delivered, for reconciliation with its manifest: distinct records (one
-- per generation id, or per payload where there is none) and revenue per currency.
WITH one AS (
    SELECT
        coalesce(generation_id, CAST(payload_key AS VARCHAR)) AS id,
        arg_min(try_cast(amount_text AS DECIMAL(38, 12)), ord) AS amount,
        arg_min(currency, ord) AS currency
    FROM drop_distinct
    GROUP BY ALL
)
SELECT
    currency,
    count(*) AS n,
    sum(amount) AS revenue
FROM one
GROUP BY currency
ORDER BY currency NULLS FIRST;
