-- Row counts the loaders compare before and after a load.
SELECT
    (SELECT count(*) FROM raw.generations WHERE platform_id = $platform_id) AS raw_generations,
    (SELECT count(*) FROM attribution.shares WHERE platform_id = $platform_id) AS attribution_shares;
