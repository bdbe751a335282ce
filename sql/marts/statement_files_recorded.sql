-- Every file recorded for a period with its sha256: what `statements verify` checks against.
SELECT rights_holder_id, kind, path, sha256 FROM settlement.statement_files WHERE period = $period
UNION ALL
SELECT '' AS rights_holder_id, kind, path, sha256 FROM settlement.period_files WHERE period = $period
ORDER BY path;
