-- Model versions a platform registered with us: records naming any other are quarantined.
SELECT model_version FROM ref.model_versions WHERE platform_id = $platform_id ORDER BY model_version;
