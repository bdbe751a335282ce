-- One dispute as it stands, for finance. Params: $dispute_id.
SELECT * FROM portal.dispute_state WHERE dispute_id = $dispute_id;
