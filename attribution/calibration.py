"""Calibrated confidence: the null distribution of a generation's top-match z, and p-values.

A fixed z threshold means less and less as the catalog grows: the top of n scores is a
maximum, and the maximum of more draws is larger (on the symbolic reference model the median
top z of ordinary generations went from 2.6 to 4.2 between 25 and 200 works). So the "pvalue"
confidence rule (attribution/shares.py) asks instead: how often does a piece that copies
nothing reach this top z, against THIS catalog with THIS model and attributor?

The null set: pieces that copy no training work and that the model never trained on, drawn
like the generations they judge, prepared by the adapter and scored exactly like generations
(same attributor, same cached training features, same ensemble). "Drawn like" matters: on the
symbolic reference model a null of the model's own samples (another seed) paid ordinary samples at
alpha from 50 to 5,000 works, a null of held-out catalog-like pieces did not (too liberal at
50 works, far too strict from 200: docs/BENCHMARKS.md). A memorised copy among the model's
own samples only raises the null, so the rule errs towards pro rata, never towards paying.
Their top z values are the null sample; a generation's
p-value is the usual permutation-test estimate (1 + #{null z >= z}) / (1 + m), valid (never
smaller than the true tail probability in expectation) for exchangeable draws, and never 0.

Why held-out pieces and not something that needs no extra data:
* leave-one-out over the catalog (score each training work against the others) tests pieces
  the model DID train on: their loss is low and their gradients small and aligned with the
  model's fit, so their z is not distributed like a new generation's; and a catalog holds
  near-duplicates (an artist's own works, arrangements), whose matches are real, not null.
* permuting scores across works destroys the one thing the null must keep, the dependence
  between the scores of one generation (the max of n correlated scores is not the max of n
  independent ones).
A platform can always provide such pieces (samples of its own model; or a validation split
it has checked is drawn like its outputs); it is an optional adapter method, ``null_items()``
(attribution/protocol.py), or the caller passes them. Because the null is scored against the
current catalog, it follows the catalog size, the model version and every attributor
parameter (damping included) without any retuning.

Multiple testing: the statistic is the maximum over the catalog and the null describes that
maximum, so p <= alpha bounds the chance that ANY work of the catalog is falsely found (the
family-wise error over the n works). No further correction over works is applied; that would
count them twice.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attribution.hashing import adapter_identity, examples_digest
from attribution.robust import robust_topk
from attribution.shares import top_z

NULL_FILE_PREFIX = "null-topz-"


@dataclass(frozen=True)
class NullDistribution:
    """Top-match z values of m null pieces against one catalog, sorted ascending; key: the
    digest of everything they depend on (attribution/hashing.py)."""

    z: np.ndarray
    key: str

    def __post_init__(self) -> None:
        z = np.sort(np.asarray(self.z, dtype=np.float64).reshape(-1))
        if len(z) == 0:
            raise ValueError("a null distribution needs at least one null piece")
        if not np.all(np.isfinite(z)):
            raise ValueError("null top z values contain NaN or infinity")
        object.__setattr__(self, "z", z)

    @property
    def m(self) -> int:
        return len(self.z)

    @property
    def min_p(self) -> float:
        """The smallest p-value m null pieces can give: 1 / (m + 1)."""
        return 1.0 / (self.m + 1)

    def p_value(self, z: float) -> float:
        """(1 + #{null z >= z}) / (1 + m); a NaN z is treated as no evidence (p = 1)."""
        if not math.isfinite(z):
            return 1.0 if math.isnan(z) else (self.min_p if z > 0 else 1.0)
        at_least = self.m - int(np.searchsorted(self.z, z, side="left"))
        return (1 + at_least) / (1 + self.m)

    def check_alpha(self, alpha: float) -> None:
        """Refuse a null too small to ever reach alpha: every generation would fall back."""
        if self.min_p > alpha:
            need = math.ceil(1.0 / alpha) - 1
            raise ValueError(
                f"the null set has {self.m} pieces, so no p-value can be below "
                f"{self.min_p:.4g} > alpha {alpha}; it needs at least {need} pieces"
            )


def null_key(
    adapter, attributor, train_examples: list, null_examples: list, n_variants: int = 0
) -> str:
    """What a null depends on: the model (adapter identity), the attributor's parameters
    (method, damping, projection, checkpoints...), the catalog, the null pieces and the
    robust-matching search they were scored through (none: the key of before it existed)."""
    parts = [adapter_identity(adapter), attributor.params(), examples_digest(train_examples)]
    if n_variants:
        parts.append({"variants": int(n_variants)})
    return examples_digest(null_examples, *parts)


def null_distribution(
    attributor,
    adapter,
    train_examples: list,
    null_examples: list,
    cache_dir: Path | None = None,
    keep: int = 1,
    n_variants: int = 0,
) -> NullDistribution:
    """Top z of every null piece, scored by ``attributor`` (already cached on
    train_examples); read from / written to cache_dir when given.

    The z is over the full score row (ScoreSummary's streaming mean and std), exactly as a
    generation's, so null and generation are compared like for like.
    """
    if not null_examples:
        raise ValueError("the null set is empty: the p-value rule needs pieces that copy nothing")
    key = null_key(adapter, attributor, train_examples, null_examples, n_variants)
    path = Path(cache_dir) / f"{NULL_FILE_PREFIX}{key[:24]}.npy" if cache_dir else None
    if path is not None and path.exists():
        return NullDistribution(np.load(path), key)
    # through the generations' own search (attribution/robust.py), so its maximum is in both
    summaries, _ = robust_topk(attributor, adapter, null_examples, keep, n_variants)
    z = np.array([top_z(s) for s in summaries], dtype=np.float64)
    if path is not None:
        # Write beside and rename: a killed run leaves no half-written null behind.
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".null-", suffix=".npy", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, z)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return NullDistribution(z, key)
