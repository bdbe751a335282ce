-- The shares in force for each generation. The attribution loader gives a generation shares
-- once (a generation that has shares keeps them), so every row here is in force; a future
-- re-attribution must supersede by run in this view, never by rewriting attribution.shares.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE OR REPLACE VIEW staging.shares AS
SELECT * FROM attribution.shares;
