-- The platform's contract in force in the generation's month (none: generated unlicensed).
SELECT contract_id, version AS contract_version, effective_from, effective_to
FROM staging.contracts_in_force($period)
WHERE platform_id = $platform_id;
