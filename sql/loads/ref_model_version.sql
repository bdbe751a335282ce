-- Register a licensed model version and its training manifest (example -> work).
INSERT OR IGNORE INTO ref.model_versions VALUES (
    $platform_id, $model_version, $model_sha256, $manifest_sha256, $local_path, $now
);

INSERT OR IGNORE INTO ref.training_manifest
SELECT $model_version, example_index, work_id, token_sha256
FROM read_parquet($manifest_path);
