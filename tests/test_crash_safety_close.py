"""kill -9 at any instant, then the same command again (issue 13; what every rerun must leave:
tests/test_crash_safety_calculate.py). Here: `period close` (step 1, payouts and the close row
in one transaction; steps 2-3, the snapshot published and its digest recorded) and `period
snapshot`, which finishes a close killed after its first step. Besides the evenly spread
instants, the close is killed right after each step returns, the narrow windows a timer rarely
hits. The month's size: TRIBUTARY_KILL_GENERATIONS (tests/kill_states.py)."""

from __future__ import annotations

import pytest
from kill_states import CLOSE, PERIOD, killed_after, series


def test_kill_close(kill_stages, tmp_path):
    series("period close", kill_stages, "approved", CLOSE, tmp_path)


def test_kill_snapshot(kill_stages, tmp_path):
    series("period snapshot", kill_stages, "pending", ["period", "snapshot", PERIOD], tmp_path)


@pytest.mark.parametrize("step", [
    "settlement.lifecycle:restatement_digest",  # inside step 1's transaction, before its commit
    "settlement.lifecycle:_publish",  # the snapshot renamed into place, its digest not recorded
])  # fmt: skip
def test_close_killed_right_after_a_step(kill_stages, tmp_path, step):
    killed_after(kill_stages, "approved", CLOSE, step, tmp_path)
