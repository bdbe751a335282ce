-- The generation most of the query's landmarks agree on at one time offset (offset voting:
-- a copy cut at the start shifts every landmark by the same number of frames).
WITH q AS (SELECT unnest($hashes) AS hash, unnest($times) AS qt)
SELECT l.platform_id, l.generation_id, l.t - q.qt AS frame_offset, count(*) AS votes
FROM q JOIN provenance.landmarks AS l ON l.hash = q.hash
GROUP BY ALL
ORDER BY votes DESC, l.platform_id, l.generation_id
LIMIT 1;
