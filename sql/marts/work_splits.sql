-- A work's ownership splits over time, oldest first.
SELECT work_id, right_type, rights_holder_id, share, effective_from, effective_to
FROM ref.splits
WHERE work_id = $work_id
ORDER BY right_type, effective_from, rights_holder_id;
