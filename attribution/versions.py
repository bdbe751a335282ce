"""Catalog versions: the catalog side of robust matching. Every training work is also scored
in the transformed forms a copy of it may take (transposed, at another tempo), each as an
extra column that belongs to the work, so a transformed copy of a work meets that work's
version as an exact match, instead of having to be undone first (attribution/robust.py).

Why this side: undoing a generation's possible transformations (``variants``) takes the
maximum over its 39 versions, and on a catalog of 800 works that maximum over an ordinary
sample reaches the z of an undone copy: transposed copies were found but only 0.17 of them
paid (docs/BENCHMARKS.md, "Robust matching"). Matching against transformed versions of the
catalog instead scores the generation once, against (1 + v) x n columns: the null's maximum
grows only as the catalog does (slowly, like a larger catalog), while a transformed copy
meets an exact copy's column. It costs (1 + v) times the training features, once per
model version, and one attribution per generation instead of 1 + v.

The adapter says what a version is: its optional ``catalog_versions(example)`` returns the
transformed versions of a prepared training example, without the example itself
(attribution/protocol.py). The training features are computed for the expanded list (its
own cache key: the examples' bytes), each column carries its work's id, and the shares sum
a work's columns as they sum a work's several training examples (shares.policy_shares). Only with the "pvalue" rule, whose null is scored against
the same expanded catalog: a z over (1 + v) x n columns means something else than over n.
"""

from __future__ import annotations

import numpy as np


def expand_catalog(adapter, train: list) -> tuple[list, np.ndarray]:
    """(the training examples, each followed by its catalog versions; owner), where
    owner[j] is the index in ``train`` of the example column j is a version of."""
    if not hasattr(adapter, "catalog_versions"):
        name = getattr(adapter, "name", type(adapter).__name__)
        raise ValueError(
            f"shares_policy catalog_versions needs the adapter to say what a version of a "
            f"training work is: adapter {name!r} has no catalog_versions(example) method "
            "(attribution/protocol.py)"
        )
    expanded, owner = [], []
    for i, example in enumerate(train):
        for version in [example, *adapter.catalog_versions(example)]:
            expanded.append(version)
            owner.append(i)
    return expanded, np.asarray(owner, dtype=np.int64)

