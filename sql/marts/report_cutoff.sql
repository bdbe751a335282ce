-- The disputes cut-off of a period's finance report as last built; before any build, the
-- period's calculation. Params: $period.
SELECT coalesce((SELECT disputes_as_of FROM portal.report_cutoffs WHERE period = $period),
                (SELECT calculated_at FROM settlement.periods WHERE period = $period)) AS disputes_as_of;
