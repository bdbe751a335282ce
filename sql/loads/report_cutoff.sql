-- The disputes cut-off of a period's finance report, recorded with its files (statements._record).
INSERT OR REPLACE INTO portal.report_cutoffs VALUES ($period, $disputes_as_of);
