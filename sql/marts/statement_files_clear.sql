-- Before a period's statements are (re)written: forget the files of the previous build, so a
-- holder who no longer earns after a recalculation keeps no stale hash. Params: $period.
DELETE FROM settlement.statement_files WHERE period = $period;
DELETE FROM settlement.period_files WHERE period = $period;
