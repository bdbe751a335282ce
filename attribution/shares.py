"""Turn one generation's attribution scores into exact decimal shares per work.

Shares are money-adjacent, so they are Decimals quantised DOWN to SHARE_QUANTUM: rounding
down can only move value into the explicit residual row, never create more than 1 in total,
and the residual makes every generation's rows sum to exactly Decimal(1).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_DOWN, Decimal

import numpy as np

SHARE_QUANTUM = Decimal("0.000000001")  # 1e-9


def scores_to_shares(
    scores: np.ndarray, work_ids: list[str], top_k: int = 8
) -> list[tuple[str | None, Decimal]]:
    """Rows (work_id, share) for the top_k works by positive score, then (None, residual).

    Negative scores (examples whose training made the generation less likely) carry no
    share. Examples of the same work are summed before ranking. Ties rank by work_id so the
    result never depends on manifest order. The residual row is always present, possibly 0.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] != len(work_ids):
        raise ValueError(f"{scores.shape[0]} scores but {len(work_ids)} work ids")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity")
    if top_k < 0:
        raise ValueError("top_k must be >= 0")

    per_work: dict[str, float] = defaultdict(float)
    for wid, s in zip(work_ids, scores, strict=True):
        per_work[wid] += max(float(s), 0.0)
    # Clip after summing too: keeps the rule "a work's weight is its positive score mass".
    total = sum(per_work.values())
    if total <= 0.0:
        return [(None, Decimal(1))]

    ranked = sorted(
        ((w, v) for w, v in per_work.items() if v > 0.0), key=lambda wv: (-wv[1], wv[0])
    )[:top_k]
    # Summed in Decimal so that the ratios below add up to at most 1 before rounding down.
    total_d = sum((Decimal(v) for v in per_work.values()), Decimal(0))
    rows: list[tuple[str | None, Decimal]] = []
    for wid, v in ranked:
        share = (Decimal(v) / total_d).quantize(SHARE_QUANTUM, rounding=ROUND_DOWN)
        rows.append((wid, share))
    residual = Decimal(1) - sum((s for _, s in rows), Decimal(0))
    if residual < 0:  # cannot happen with ROUND_DOWN; guard the invariant money relies on
        raise ArithmeticError(f"shares exceed 1 by {-residual}")
    rows.append((None, residual))
    return rows
