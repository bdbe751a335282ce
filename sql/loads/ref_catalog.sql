-- Catalog import: works, rights holders and ownership splits from the catalog's Parquet.
-- Re-importing the same catalog changes nothing; a changed work or holder is updated in place
-- (rights that change hands over time are dated splits, which are never updated).
INSERT OR REPLACE INTO ref.works
SELECT work_id, iswc, isrc, title, composer, collection, style, source
FROM read_parquet($works_path);

INSERT OR REPLACE INTO ref.rights_holders
SELECT rights_holder_id, name, kind, payout_currency, CAST(min_payout_usd AS DECIMAL(18, 2))
FROM read_parquet($holders_path);

INSERT OR IGNORE INTO ref.splits
SELECT work_id, right_type, rights_holder_id, CAST(share AS DECIMAL(9, 6)),
       CAST(effective_from AS DATE), CAST(effective_to AS DATE)
FROM read_parquet($splits_path);
