-- Replace an open period's calculation with the one just computed in the calc_* temp tables.
DELETE FROM settlement.statement_lines WHERE period = $period;
DELETE FROM settlement.holder_totals WHERE period = $period;
DELETE FROM settlement.pools WHERE period = $period;
DELETE FROM settlement.generation_amounts WHERE period = $period;
INSERT INTO settlement.pools BY NAME SELECT * FROM calc_pools;
INSERT INTO settlement.holder_totals BY NAME SELECT * FROM calc_holder_totals;
INSERT INTO settlement.statement_lines BY NAME SELECT * FROM calc_statement_lines;
INSERT INTO settlement.generation_amounts BY NAME SELECT * FROM calc_generations;
