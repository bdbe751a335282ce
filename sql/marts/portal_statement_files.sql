-- A holder's statement files for a period with their recorded sha256 (settlement.statements).
-- Params: $period, $rights_holder_id.
SELECT kind, path, sha256
FROM settlement.statement_files
WHERE period = $period AND rights_holder_id = $rights_holder_id
ORDER BY kind;
