"""Robust matching: a generation is also scored as transformed versions of itself (for music:
transposed, at another tempo, pitch-shifted, stretched), so a transformed copy of a training
work is traced back to it.

The adapter says what a transformation is (its optional ``variants(example)``: the example
itself first, then transformed versions; attribution/protocol.py). Scoring every variant
costs one attribution each, so only the ``n_variants`` the model itself finds most likely
(lowest per_example_loss: a forward pass, no gradient; the example itself is one of the
candidates) are attributed, and the one whose top match stands out most (highest top z) is
kept. A copy undone by one of its variants becomes the memorised training work again: most
likely under the model, so n_variants = 1 (attribute only the most likely version) already
finds it, at the cost of one attribution, and selecting by likelihood leaves the top z of an
ordinary generation, whose most likely version is usually itself, as it was.

The search is a maximum over several tries, so it raises ordinary generations' top z too:
the "pvalue" rule's null must be scored through the same search (calibration.null_distribution
with ``score=``), which keeps the paid fraction at alpha.
"""

from __future__ import annotations

import numpy as np
import torch

from attribution.shares import ScoreSummary, top_z


def likely_variants(adapter, example, n_variants: int, batch_size: int = 64) -> list:
    """The n_variants most likely of the example's variants (the example itself among them),
    most likely first; ties keep the adapter's order (the example first). When n_variants
    covers them all, all of them in the adapter's order, without computing a likelihood."""
    found = list(adapter.variants(example)) or [example]
    if len(found) <= n_variants or len(found) == 1:
        return found
    losses = []
    with torch.no_grad():
        for i in range(0, len(found), batch_size):
            losses.append(adapter.per_example_loss(found[i : i + batch_size]).detach().cpu())
    order = np.argsort(torch.cat(losses).numpy(), kind="stable")[: max(1, n_variants)]
    return [found[int(j)] for j in order]


def robust_topk(
    attributor, adapter, examples: list, k: int, n_variants: int
) -> tuple[list[ScoreSummary], list[int]]:
    """Per example: the ScoreSummary of its variant with the highest top z among its
    n_variants most likely variants (the example itself is one of its variants), and whether
    the one kept is a transformed version (1) or the example itself (0)."""
    if n_variants <= 0 or not hasattr(adapter, "variants"):
        return attributor.attribute_topk(examples, k=k), [0] * len(examples)
    # Rank variants with the last checkpoint, whichever one scoring left loaded: the choice
    # must not depend on what ran before (the null and the generations choose alike).
    adapter.load_checkpoint(adapter.checkpoints()[-1])
    groups = [likely_variants(adapter, x, n_variants) for x in examples]
    flat = [v for g in groups for v in g]
    summaries = attributor.attribute_topk(flat, k=k)
    out, chosen, i = [], [], 0
    for x, g in zip(examples, groups, strict=True):
        part = summaries[i : i + len(g)]
        i += len(g)
        best = int(np.argmax([top_z(s) for s in part]))  # first maximum: the most likely
        out.append(part[best])
        chosen.append(int(g[best] is not x and _differs(g[best], x)))
    return out, chosen


def _differs(a, b) -> bool:
    try:
        return bool(np.any(np.asarray(a) != np.asarray(b))) or np.shape(a) != np.shape(b)
    except ValueError:  # shapes that do not broadcast
        return True


class TestedP:
    """A p-value already decided for one generation (two tests combined, below), read by
    shares.policy_shares through the same ``p_value(z)`` a null distribution offers."""

    def __init__(self, p: float):
        self.p = float(p)

    def p_value(self, z: float) -> float:
        return self.p


def two_tests(
    plain: list[ScoreSummary], searched: list[ScoreSummary], null_plain, null_searched
) -> list[tuple[ScoreSummary, float]]:
    """Per generation: the summary to pay from and its p-value, from two tests at once, each
    against its own null: the generation as it is, and the search over its versions.

    Why two: the search is a maximum over several versions, so its null sits higher and an
    exact copy that the plain test pays at once can fall under it (measured at 800 works:
    exact copies paid 100 % plain, 30 % through the search alone), while a transformed copy
    is only visible to the search. The generation keeps the test that finds it more
    significant, and the p-value is Bonferroni-adjusted for the two: 2 x the smaller one
    (capped at 1), so ordinary generations are paid at most at alpha (family-wise).
    On a tie (both at the smallest p-value their nulls can give, which a small null reaches
    often) the search's version is paid: it stands out at least as much as the generation
    itself (it is one of the versions searched), and a transformed copy's plain top match is
    another work (measured on the audio model: benchmarks/robust_matching.py --model audio)."""
    out = []
    for s0, s1 in zip(plain, searched, strict=True):
        p0, p1 = null_plain.p_value(top_z(s0)), null_searched.p_value(top_z(s1))
        best, p = (s1, p1) if p1 <= p0 else (s0, p0)
        out.append((best, min(1.0, 2.0 * p)))
    return out
