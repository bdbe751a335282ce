"""kill -9 at any instant, then the same command again: it completes, and nothing is lost,
doubled or half-written (issue 13). Here: `settle calculate` and `settle approve`.

Each command is killed with SIGKILL at TRIBUTARY_KILL_INSTANTS (default 20) instants spread
evenly over an uninterrupted run and run again; after every rerun the checks of
tests/kill_states.py `invariants` hold (holders sum to each pool, every ledger transaction sums
to zero, statement files match their recorded hashes, a closed period's snapshot exists, is
read-only and matches its digest, no partial file is left) and the warehouse holds exactly what
an uninterrupted run leaves. The month's size: TRIBUTARY_KILL_GENERATIONS (tests/kill_states.py).
`settle approve` is one small transaction (about 0.2 s, nothing makes it longer honestly): its
20 instants fall within that."""

from __future__ import annotations

from kill_states import APPROVE, CALCULATE, series


def test_kill_calculate(kill_stages, tmp_path):
    series("settle calculate", kill_stages, "seeded", CALCULATE, tmp_path)


def test_kill_approve(kill_stages, tmp_path):
    series("settle approve", kill_stages, "calculated", APPROVE, tmp_path)
