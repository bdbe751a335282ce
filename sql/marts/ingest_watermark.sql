SELECT watermark FROM raw.ingest_watermarks WHERE platform_id = $platform_id;
