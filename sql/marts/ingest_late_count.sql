SELECT count(*) AS n FROM raw.late_arrivals WHERE platform_id = $platform_id;
