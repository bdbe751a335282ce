-- Each rights holder's catalog as group-wise attribution reads it: the works in which the
-- holder owns a share of either right under the splits in force today (a work shared by two
-- holders is in both catalogs). Sorted, so a shard's groups do not depend on scan order.
SELECT rights_holder_id, list(DISTINCT work_id ORDER BY work_id) AS work_ids
FROM ref.splits
WHERE effective_from <= current_date AND (effective_to IS NULL OR effective_to > current_date)
GROUP BY rights_holder_id
ORDER BY rights_holder_id;
