-- The file each ingested window landed in the lake, and its sha256: the input files an
-- auditor can re-hash to check what a settlement read.
ALTER TABLE raw.ingest_windows ADD COLUMN IF NOT EXISTS raw_file VARCHAR;
ALTER TABLE raw.ingest_windows ADD COLUMN IF NOT EXISTS raw_file_sha256 VARCHAR;
