-- Audio generations (issue 12): a generation's output is either tokens or an audio file.
-- Audio outputs carry no tokens, so output_tokens becomes nullable; the file itself lands in
-- the lake, content-addressed (LAKE/audio/platform=<id>/<sha256>.<format>), and its row here
-- says where and what the platform declared. A side table rather than new columns on
-- raw.generations, so every positional INSERT into raw.generations stays valid.
ALTER TABLE raw.generations ALTER COLUMN output_tokens DROP NOT NULL;

CREATE TABLE IF NOT EXISTS raw.generation_audio (
    platform_id   VARCHAR NOT NULL,
    generation_id VARCHAR NOT NULL,
    audio_path    VARCHAR NOT NULL,  -- relative to the lake root
    audio_sha256  VARCHAR NOT NULL CHECK (length(audio_sha256) = 64),
    audio_bytes   BIGINT NOT NULL CHECK (audio_bytes > 0),
    sample_rate   INTEGER NOT NULL,  -- as the platform declared it
    duration_s    DOUBLE NOT NULL,   -- as the platform declared it
    ingest_run_id VARCHAR NOT NULL,
    loaded_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (platform_id, generation_id)
);
