-- The symbolic generation sharing most of the query's interval n-grams.
SELECT g.platform_id, g.generation_id, count(DISTINCT g.gram) AS votes, any_value(p.n_hashes) AS n_hashes
FROM provenance.midi_grams AS g
JOIN provenance.prints AS p USING (platform_id, generation_id)
WHERE g.gram IN (SELECT unnest($grams))
GROUP BY ALL
ORDER BY votes DESC, g.platform_id, g.generation_id
LIMIT 1;
