-- Whether a batch of the access-log journal was loaded. Params: $batch.
SELECT batch FROM portal.access_journal_loads WHERE batch = $batch;
