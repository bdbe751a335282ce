-- One holder's statement total for a period (every line, zero lines included).
SELECT coalesce(sum(amount), 0) AS amount
FROM settlement.statement_lines
WHERE period = $period AND rights_holder_id = $rights_holder_id;
