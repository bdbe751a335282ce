INSERT OR REPLACE INTO audit.runs VALUES ($run_id, $kind, $subject, $code_version, $details_json, $started_at, $now);
