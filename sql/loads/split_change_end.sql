-- An ownership change, part 1: the rows in force on the change date end on it; rows that start
-- on it (an earlier change for the same date) are replaced by part 2's.
UPDATE ref.splits SET effective_to = CAST($on AS DATE)
WHERE work_id = $work_id AND right_type = $right_type
  AND effective_from < CAST($on AS DATE)
  AND (effective_to IS NULL OR effective_to > CAST($on AS DATE));
DELETE FROM ref.splits
WHERE work_id = $work_id AND right_type = $right_type AND effective_from = CAST($on AS DATE);
