-- Audio generations of a platform already landed, with the sha256 they were landed with: a
-- rerun of ingest does not fetch these again while the lake still holds the bytes.
SELECT generation_id, audio_sha256
FROM raw.generation_audio
WHERE platform_id = $platform_id;
