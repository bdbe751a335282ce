-- One holder's statement of account for a period, from the ledger (the only source of money
-- moved): opening balance (all earlier periods), earnings by platform (settlement postings
-- net of reversals of replaced calculations), adjustments with what they correct, payout.
-- Params: $period, $rights_holder_id. Periods are 'YYYY-MM', so text order is time order.
SELECT
    CASE
        WHEN period < $period THEN 'opening'
        WHEN transaction_id LIKE 'payout/%' THEN 'payout'
        WHEN transaction_id LIKE 'adjust/%' OR transaction_id LIKE 'reverse/adjust/%' THEN 'adjustment'
        ELSE 'earnings'
    END AS section,
    CASE
        WHEN period < $period THEN ''
        WHEN transaction_id LIKE 'settle/%' THEN split_part(transaction_id, '/', 3)
        WHEN transaction_id LIKE 'reverse/settle/%' THEN split_part(transaction_id, '/', 4)
        ELSE ''
    END AS platform_id,
    CASE WHEN period = $period AND (transaction_id LIKE 'adjust/%' OR transaction_id LIKE 'reverse/adjust/%')
         THEN transaction_id ELSE '' END AS reference,
    CASE WHEN period = $period AND (transaction_id LIKE 'adjust/%' OR transaction_id LIKE 'reverse/adjust/%')
         THEN memo ELSE '' END AS memo,
    currency,
    sum(amount) AS amount
FROM staging.holder_postings
WHERE rights_holder_id = $rights_holder_id AND period <= $period
GROUP BY ALL
ORDER BY section, platform_id, reference, memo, currency;
