-- Catalog import: works, rights holders and ownership splits from the catalog's Parquet.
-- Re-importing the same catalog changes nothing; a changed work or holder is updated in place.
INSERT OR REPLACE INTO ref.works
SELECT work_id, iswc, isrc, title, composer, collection, style, source
FROM read_parquet($works_path);

INSERT OR REPLACE INTO ref.rights_holders
SELECT rights_holder_id, name, kind, payout_currency, CAST(min_payout_usd AS DECIMAL(18, 2))
FROM read_parquet($holders_path);

-- A split row is keyed by work, right, holder and start: importing the same key again sets its
-- share and end date (how an ownership change ends the old holder's row); a new start is a new
-- row, so earlier months keep their history.
INSERT INTO ref.splits
SELECT work_id, right_type, rights_holder_id, CAST(share AS DECIMAL(9, 6)),
       CAST(effective_from AS DATE), CAST(effective_to AS DATE)
FROM read_parquet($splits_path)
ON CONFLICT (work_id, right_type, rights_holder_id, effective_from)
DO UPDATE SET share = excluded.share, effective_to = excluded.effective_to;
