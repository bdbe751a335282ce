-- One dispute, only for its own holder. Params: $dispute_id, $rights_holder_id.
SELECT * FROM portal.dispute_state WHERE dispute_id = $dispute_id AND rights_holder_id = $rights_holder_id;
