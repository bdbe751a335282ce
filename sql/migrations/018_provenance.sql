-- Provenance checks (issue 17): API keys of streaming platforms and distributors, and the
-- content fingerprints of logged generations a check is matched against.
CREATE SCHEMA IF NOT EXISTS provenance;

-- A key is `tpk_<key_id>_<secret>`; only sha256(secret) is stored. A random 256-bit secret
-- needs no slow password hash (nothing to brute-force), and sha256 lets every request be
-- checked in microseconds.
CREATE TABLE IF NOT EXISTS provenance.api_keys (
    key_id          VARCHAR PRIMARY KEY,
    client          VARCHAR NOT NULL,
    secret_sha256   VARCHAR NOT NULL,
    rate_per_minute INTEGER NOT NULL CHECK (rate_per_minute > 0),
    created_at      TIMESTAMP NOT NULL,
    revoked_at      TIMESTAMP
);

-- One row per fingerprinted generation, written in the same transaction as its hashes: a
-- generation with a row here is completely indexed (`tributary provenance index` resumes on
-- the rest after a kill).
CREATE TABLE IF NOT EXISTS provenance.prints (
    platform_id   VARCHAR NOT NULL,
    generation_id VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL CHECK (kind IN ('audio', 'midi')),
    n_hashes      INTEGER NOT NULL,
    run_id        VARCHAR NOT NULL,
    indexed_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (platform_id, generation_id)
);

-- Audio landmarks: (f1, f2, dt) hash at anchor frame t (provenance/fingerprint.py).
CREATE TABLE IF NOT EXISTS provenance.landmarks (
    hash          BIGINT NOT NULL,
    platform_id   VARCHAR NOT NULL,
    generation_id VARCHAR NOT NULL,
    t             INTEGER NOT NULL
);

-- Symbolic generations: transposition-robust interval n-grams of the melody.
CREATE TABLE IF NOT EXISTS provenance.midi_grams (
    gram          VARCHAR NOT NULL,
    platform_id   VARCHAR NOT NULL,
    generation_id VARCHAR NOT NULL
);
