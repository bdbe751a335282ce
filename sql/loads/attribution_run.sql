INSERT OR IGNORE INTO attribution.runs VALUES (
    $run_id, $platform_id, $model_version, $method, $params_json, $n_generations, $n_rejected, $now
);
