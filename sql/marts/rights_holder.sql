-- One rights holder's reference row.
SELECT rights_holder_id, name, kind, payout_currency, min_payout
FROM ref.rights_holders
WHERE rights_holder_id = $rights_holder_id;
