-- The warehouse: one DuckDB file, one schema per stage of the data flow.
-- raw: what platforms sent; ref: catalog, rights, contracts, models; attribution: shares;
-- settlement + ledger: money; audit: who ran what, on which inputs.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS ref;
CREATE SCHEMA IF NOT EXISTS attribution;
CREATE SCHEMA IF NOT EXISTS settlement;
CREATE SCHEMA IF NOT EXISTS ledger;
CREATE SCHEMA IF NOT EXISTS audit;

-- reference data -------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS ref.works (
    work_id     VARCHAR PRIMARY KEY,
    iswc        VARCHAR NOT NULL,
    isrc        VARCHAR NOT NULL,
    title       VARCHAR NOT NULL,
    composer    VARCHAR,
    collection  VARCHAR NOT NULL,
    style       VARCHAR NOT NULL,
    source      VARCHAR
);

CREATE TABLE IF NOT EXISTS ref.rights_holders (
    rights_holder_id VARCHAR PRIMARY KEY,
    name             VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,
    payout_currency  VARCHAR NOT NULL,
    min_payout       DECIMAL(18, 2) NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS ref.splits (
    work_id          VARCHAR NOT NULL,
    right_type       VARCHAR NOT NULL CHECK (right_type IN ('publishing', 'master')),
    rights_holder_id VARCHAR NOT NULL,
    share            DECIMAL(9, 6) NOT NULL CHECK (share > 0 AND share <= 1),
    effective_from   DATE NOT NULL,
    effective_to     DATE,
    PRIMARY KEY (work_id, right_type, rights_holder_id, effective_from)
);

CREATE TABLE IF NOT EXISTS ref.platforms (
    platform_id VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL,
    conn_id     VARCHAR NOT NULL,  -- Airflow Connection holding base URL and token
    registered_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS ref.contracts (
    contract_id       VARCHAR NOT NULL,
    version           INTEGER NOT NULL,
    platform_id       VARCHAR NOT NULL,
    effective_from    DATE NOT NULL,
    effective_to      DATE,
    currency          VARCHAR NOT NULL,
    pool_rate         DECIMAL(9, 6) NOT NULL CHECK (pool_rate >= 0 AND pool_rate <= 1),
    publishing_weight DECIMAL(9, 6) NOT NULL,
    master_weight     DECIMAL(9, 6) NOT NULL,
    method            VARCHAR NOT NULL,
    top_k             INTEGER NOT NULL,
    PRIMARY KEY (contract_id, version),
    CHECK (publishing_weight + master_weight = 1)
);

CREATE TABLE IF NOT EXISTS ref.model_versions (
    platform_id     VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    model_sha256    VARCHAR NOT NULL,
    manifest_sha256 VARCHAR NOT NULL,
    local_path      VARCHAR NOT NULL,
    fetched_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (platform_id, model_version)
);

CREATE TABLE IF NOT EXISTS ref.training_manifest (
    model_version VARCHAR NOT NULL,
    example_index BIGINT NOT NULL,
    work_id       VARCHAR NOT NULL,
    token_sha256  VARCHAR NOT NULL,
    PRIMARY KEY (model_version, example_index)
);

-- raw: generation events as delivered ---------------------------------------------------
CREATE TABLE IF NOT EXISTS raw.generations (
    platform_id      VARCHAR NOT NULL,
    generation_id    VARCHAR NOT NULL,
    model_version    VARCHAR NOT NULL,
    created_at       TIMESTAMP NOT NULL,  -- UTC
    style            VARCHAR NOT NULL,
    prompt           VARCHAR,
    output_tokens    INTEGER[] NOT NULL,
    territory        VARCHAR NOT NULL,
    revenue_amount   DECIMAL(18, 6) NOT NULL,
    revenue_currency VARCHAR NOT NULL,
    window_start     TIMESTAMP NOT NULL,
    window_end       TIMESTAMP NOT NULL,
    ingest_run_id    VARCHAR NOT NULL,
    loaded_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (platform_id, generation_id)
);

CREATE TABLE IF NOT EXISTS raw.quarantine (
    platform_id    VARCHAR NOT NULL,
    payload_sha256 VARCHAR NOT NULL,  -- one row per distinct bad payload, however often sent
    generation_id  VARCHAR,
    rule           VARCHAR NOT NULL,
    reason         VARCHAR NOT NULL,
    raw_payload    VARCHAR NOT NULL,
    window_start   TIMESTAMP NOT NULL,
    window_end     TIMESTAMP NOT NULL,
    ingest_run_id  VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (platform_id, payload_sha256)
);

CREATE TABLE IF NOT EXISTS raw.ingest_windows (
    platform_id      VARCHAR NOT NULL,
    window_start     TIMESTAMP NOT NULL,
    window_end       TIMESTAMP NOT NULL,
    ingest_run_id    VARCHAR NOT NULL,
    received         BIGINT NOT NULL,
    loaded_new       BIGINT NOT NULL,
    already_loaded   BIGINT NOT NULL,
    quarantined      BIGINT NOT NULL,
    reported_count   BIGINT NOT NULL,
    reported_revenue DECIMAL(18, 6) NOT NULL,
    finished_at      TIMESTAMP NOT NULL
);

-- attribution ------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS attribution.runs (
    run_id        VARCHAR PRIMARY KEY,
    platform_id   VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    params_json   VARCHAR NOT NULL,
    n_generations BIGINT NOT NULL,
    n_rejected    BIGINT NOT NULL,
    finished_at   TIMESTAMP NOT NULL
);

-- One row per (generation, work) plus one residual row per generation (work_id NULL).
-- Shares of a generation sum to exactly 1.
CREATE TABLE IF NOT EXISTS attribution.shares (
    run_id        VARCHAR NOT NULL,
    platform_id   VARCHAR NOT NULL,
    generation_id VARCHAR NOT NULL,
    work_id       VARCHAR,
    is_residual   BOOLEAN NOT NULL,
    share         DECIMAL(18, 9) NOT NULL CHECK (share >= 0 AND share <= 1),
    score         DOUBLE,
    rank          INTEGER NOT NULL,
    method        VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS attribution.rejections (
    run_id        VARCHAR NOT NULL,
    platform_id   VARCHAR NOT NULL,
    generation_id VARCHAR NOT NULL,
    reason        VARCHAR NOT NULL,
    recorded_at   TIMESTAMP NOT NULL
);

-- settlement and ledger --------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS settlement.periods (
    period        VARCHAR PRIMARY KEY,  -- YYYY-MM
    status        VARCHAR NOT NULL CHECK (status IN ('open', 'calculated', 'approved', 'closed')),
    run_id        VARCHAR,
    calculated_by VARCHAR,
    calculated_at TIMESTAMP,
    inputs_sha256 VARCHAR  -- digest of everything the calculation read
);

CREATE TABLE IF NOT EXISTS settlement.pools (
    period          VARCHAR NOT NULL,
    platform_id     VARCHAR NOT NULL,
    contract_id     VARCHAR NOT NULL,
    contract_version INTEGER NOT NULL,
    currency        VARCHAR NOT NULL,
    n_generations   BIGINT NOT NULL,
    revenue         DECIMAL(38, 6) NOT NULL,
    pool_rate       DECIMAL(9, 6) NOT NULL,
    pool_amount     DECIMAL(38, 2) NOT NULL,
    run_id          VARCHAR NOT NULL,
    PRIMARY KEY (period, platform_id)
);

-- A statement line: what one holder earned from one work on one platform for one right.
CREATE TABLE IF NOT EXISTS settlement.statement_lines (
    period           VARCHAR NOT NULL,
    platform_id      VARCHAR NOT NULL,
    rights_holder_id VARCHAR NOT NULL,
    work_id          VARCHAR NOT NULL,
    right_type       VARCHAR NOT NULL,
    output_exact     DECIMAL(38, 18) NOT NULL,  -- follows attribution
    training_exact   DECIMAL(38, 18) NOT NULL,  -- residual spread over the training manifest
    n_generations    BIGINT NOT NULL,
    amount           DECIMAL(38, 2) NOT NULL,
    currency         VARCHAR NOT NULL,
    run_id           VARCHAR NOT NULL,
    PRIMARY KEY (period, platform_id, rights_holder_id, work_id, right_type)
);

CREATE TABLE IF NOT EXISTS settlement.holder_totals (
    period           VARCHAR NOT NULL,
    platform_id      VARCHAR NOT NULL,
    rights_holder_id VARCHAR NOT NULL,
    exact_amount     DECIMAL(38, 18) NOT NULL,
    amount           DECIMAL(38, 2) NOT NULL,
    currency         VARCHAR NOT NULL,
    run_id           VARCHAR NOT NULL,
    PRIMARY KEY (period, platform_id, rights_holder_id)
);

CREATE SEQUENCE IF NOT EXISTS ledger.posting_seq;
CREATE TABLE IF NOT EXISTS ledger.postings (
    posting_id     BIGINT PRIMARY KEY DEFAULT nextval('ledger.posting_seq'),
    transaction_id VARCHAR NOT NULL,
    period         VARCHAR NOT NULL,
    account        VARCHAR NOT NULL,  -- platform_payable:<platform> | holder_payable:<holder>
    amount         DECIMAL(38, 2) NOT NULL,  -- debit positive, credit negative; a transaction sums to 0
    currency       VARCHAR NOT NULL,
    memo           VARCHAR NOT NULL,
    run_id         VARCHAR NOT NULL,
    posted_at      TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS settlement.statement_files (
    period           VARCHAR NOT NULL,
    rights_holder_id VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,
    path             VARCHAR NOT NULL,
    sha256           VARCHAR NOT NULL,
    run_id           VARCHAR NOT NULL,
    PRIMARY KEY (period, rights_holder_id, kind)
);

-- audit ----------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS audit.runs (
    run_id       VARCHAR PRIMARY KEY,
    kind         VARCHAR NOT NULL,  -- ingest | attribution | settlement
    subject      VARCHAR NOT NULL,  -- platform, model version or period
    code_version VARCHAR NOT NULL,
    details_json VARCHAR NOT NULL,
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP NOT NULL
);
