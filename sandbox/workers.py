"""Worker processes for the sandbox's CPU-bound builds: catalog parsing, audio rendering,
Griffin-Lim.

`concurrent.futures.ProcessPoolExecutor`, not `multiprocessing.Pool`: leaving `with Pool()`
calls terminate(), which stops idle workers with SIGTERM, and a process that has run an
Airflow task in-process (dag.test: the demo, the end-to-end tests) carries the task runner's
SIGTERM handler into every forked worker, where it ignores the signal. terminate() then
waits forever for a worker blocked on the pool's queue lock (it hung `make test` in
test_two_months). The executor ends its workers by message instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager


@contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """An executor of `workers` processes; on an error its pending work is cancelled."""
    executor = ProcessPoolExecutor(max_workers=workers)
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
