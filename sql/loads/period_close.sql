-- Close: remember which generations this period paid for, and mark it closed.
INSERT OR IGNORE INTO settlement.settled_generations
SELECT $period, platform_id, generation_id FROM staging.generations WHERE period = $period;
UPDATE settlement.periods SET status = 'closed' WHERE period = $period;
