-- Scratch tables of one file drop (an in-memory DuckDB, not the warehouse). Every record
-- file is normalised into drop_parsed, typed files (fast path) and raw lines alike.
CREATE OR REPLACE TEMP TABLE drop_parsed (
    ord             BIGINT,    -- delivery order over the whole drop (file, then line)
    line            VARCHAR,   -- the line as delivered (raw-line path only)
    source          VARCHAR,   -- file name inside the drop
    line_no         BIGINT,    -- 1-based record number in its file (blank lines not counted)
    is_object       BOOLEAN,
    generation_id   VARCHAR,
    model_version   VARCHAR,
    created_at_text VARCHAR,
    style           VARCHAR,
    prompt          VARCHAR,
    has_output      BOOLEAN,
    territory       VARCHAR,
    has_revenue     BOOLEAN,
    amount_text     VARCHAR,
    currency        VARCHAR,
    schema_version  VARCHAR,
    tokens          INTEGER[]
);
