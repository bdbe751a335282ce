-- Every stored ownership split: an import's rows are checked merged over these.
SELECT work_id, right_type, rights_holder_id, share, effective_from, effective_to FROM ref.splits;
