-- Late generations of closed periods are paid by this calculation's adjustments: stamp them
-- with the run that booked them (a recalculation of the same open period stamps them again).
UPDATE raw.late_arrivals
SET adjusted_run_id = $run_id, adjust_in_period = $period
WHERE original_period < $period
  AND (adjusted_run_id IS NULL OR adjust_in_period = $period);
