-- An ownership change, part 2: a new holder's row from the change date, open-ended.
INSERT INTO ref.splits VALUES ($work_id, $right_type, $rights_holder_id, CAST($share AS DECIMAL(9, 6)),
                               CAST($on AS DATE), NULL);
