INSERT INTO portal.access_journal_loads VALUES ($batch, $rows);
