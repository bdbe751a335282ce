"""Group-wise attribution: how much a generation owes to a holder's catalog, a collection or
an artist, rather than to one work (GUDA, Sony, ICML 2026, simplified to our reference models).

For each group G, unlearn G from the served weights theta_0 with one Fisher-regularised
gradient-ASCENT step on the summed loss of G's training works (the step and the Fisher of
attribution/unlearning.py), then score each generation g by how much its loss rises:
L_g(theta_-G) - L_g(theta_0). That is the question leave-one-group-out (LOGO) retraining
answers exactly ("what would g lose if G had never been licensed"), at the cost of one
backward pass over G's works and one forward pass over the generations per group, instead of
a training run per group.

Step length. unlearning.py moves every target by the same step_size * ||theta_0||: it ranks
training works within one target, so only the direction matters. Here the scores of different
groups are compared, and removing a large or influential catalog moves the model further than
removing a small one (the influence-function estimate of LOGO, (1/n) H^-1 sum_{i in G} g_i,
grows with the group). So by default (common_scale=True) every group's step is scaled by the
same factor, chosen so the mean step over groups is step_size * ||theta_0||: a group whose
preconditioned gradient is twice as large moves twice as far. common_scale=False normalises
each group to the same length, as unlearning.py does for targets.

Tuned defaults (benchmarks/group_attribution.py --grid --seeds 0, a tuning seed reported
apart from the evaluation seeds; docs/BENCHMARKS.md): one step of 0.003 * ||theta_0||, common
scale. Steps of 0.001-0.01 (one step) tie on top-holder agreement with LOGO (0.44 on 32
targets) and are within 0.01 in Spearman: the linear regime, where a common factor does not
change any ranking. 0.02 (instance unlearning's step) and 2-3 steps leave it and get worse
(0.02 x 3: 0.09). Of the tied steps, 0.003 keeps the loss rise further above float32
round-off of the summed NLL than 0.001.

`summed_instance_scores` is the cheap alternative shown side by side in
benchmarks/group_attribution.py: any instance-level attributor's (n_targets, n_train) scores
(e.g. TRAK's), summed over each group's works, which is first-order additive by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from attribution.protocol import ModelAdapter
from attribution.unlearning import UnlearningAttributor, _norm


def resolve_groups(
    groups: Mapping[str, Sequence], n_train: int, work_ids: Sequence[str] | None = None
) -> dict[str, list[int]]:
    """Group name -> sorted training indices; members are work ids when work_ids is given,
    else indices into the training list. A ValueError names the group and the bad member."""
    if not groups:
        raise ValueError("no groups to attribute")
    index = None if work_ids is None else {w: i for i, w in enumerate(work_ids)}
    if index is not None and len(index) != len(work_ids):
        raise ValueError("work_ids are not unique")
    out: dict[str, list[int]] = {}
    for name, members in groups.items():
        if isinstance(members, str | bytes):
            # A ValueError like every other bad group: hostile input, not a programming error.
            msg = f"group {name!r}: members must be a list of works, not a string"
            raise ValueError(msg)  # noqa: TRY004
        members = list(members)
        if not members:
            raise ValueError(f"group {name!r} has no works")
        idx = set()
        for m in members:
            if index is not None:
                if m not in index:
                    raise ValueError(f"group {name!r}: unknown work {m!r}")
                idx.add(index[m])
            else:
                if isinstance(m, bool) or not isinstance(m, int | np.integer):
                    raise ValueError(f"group {name!r}: work {m!r} is not a training index")
                if not 0 <= int(m) < n_train:
                    raise ValueError(
                        f"group {name!r}: unknown work {m!r} (training set has {n_train})"
                    )
                idx.add(int(m))
        out[str(name)] = sorted(idx)
    return out


# The group methods a contract may name (settlement.reference.Contract.group_method) and the
# parameters each takes (its group_params): "group-unlearning" is this module's attributor,
# "trak-sum" TRAK's instance scores summed per group (attribution/trak.py's parameters).
GROUP_METHOD_PARAMS = {
    "group-unlearning": (
        "step_size", "steps", "common_scale", "fisher_weight", "fisher_samples", "precondition",
        "batch_size",
    ),
    "trak-sum": ("k_in", "k_out", "damping", "batch_size", "layers", "curvature"),
}  # fmt: skip


def _number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and bool(np.isfinite(x))


def _whole(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# Each parameter's rule, as a (test, rule in words) pair: a contract is hostile input, so a
# value that would crash or silently misbehave deep in a run is refused when it is registered.
_PARAM_RULES = {
    "step_size": (lambda x: _number(x) and 0 < x <= 1, "a number in (0, 1]"),
    "steps": (lambda x: _whole(x) and 1 <= x <= 10, "a whole number from 1 to 10"),
    "common_scale": (lambda x: isinstance(x, bool), "true or false"),
    "fisher_weight": (lambda x: _number(x) and x >= 0, "a number >= 0"),
    "fisher_samples": (lambda x: _whole(x) and 1 <= x <= 100_000, "a whole number from 1 to 100000"),
    "precondition": (lambda x: x is None or (_number(x) and x > 0), "a number > 0 or null"),
    "batch_size": (lambda x: _whole(x) and 1 <= x <= 4096, "a whole number from 1 to 4096"),
    "k_in": (lambda x: _whole(x) and x >= 1, "a whole number >= 1"),
    "k_out": (lambda x: _whole(x) and x >= 1, "a whole number >= 1"),
    "damping": (lambda x: _number(x) and x > 0, "a number > 0"),
    "layers": (lambda x: x in ("output", "all"), "'output' or 'all'"),
    "curvature": (lambda x: x in ("kfac-gram", "kfac", "gram"), "'kfac-gram', 'kfac' or 'gram'"),
}


def check_group_terms(method: str, params: Mapping) -> None:
    """Refuse a group method or parameters a run would reject or misuse: ValueError naming
    the parameter and its rule."""
    if method not in GROUP_METHOD_PARAMS:
        raise ValueError(f"group_method {method!r} is not one of {sorted(GROUP_METHOD_PARAMS)}")
    if not isinstance(params, Mapping):
        # hostile contract input: a ValueError like every other bad term
        raise ValueError(f"group_params must be an object of parameters, not {params!r}")  # noqa: TRY004
    bad = sorted(set(params) - set(GROUP_METHOD_PARAMS[method]))
    if bad:
        raise ValueError(
            f"group_params {bad} are not parameters of {method!r}"
            f" (it takes {list(GROUP_METHOD_PARAMS[method])})"
        )
    for name, value in params.items():
        test, rule = _PARAM_RULES[name]
        if not test(value):
            raise ValueError(f"group_params {name} must be {rule}, not {value!r}")


def holder_shares(scores: np.ndarray) -> np.ndarray:
    """(n_targets, n_groups) scores -> each group's share of the target: its positive part over
    the sum of the positive parts (a group whose removal would not raise the loss owes
    nothing); a target no group raises has all shares 0."""
    pos = np.clip(np.asarray(scores, dtype=np.float64), 0, None)
    total = pos.sum(1, keepdims=True)
    return np.divide(pos, total, out=np.zeros_like(pos), where=total > 0)


def summed_instance_scores(scores: np.ndarray, groups: Mapping[str, Sequence[int]]) -> np.ndarray:
    """(n_targets, n_train) instance scores -> (n_targets, n_groups): each group's sum.
    groups: name -> training indices (resolve_groups' output), in the order of the columns."""
    scores = np.asarray(scores, dtype=np.float64)
    resolved = resolve_groups(groups, scores.shape[1])
    return np.stack([scores[:, idx].sum(1) for idx in resolved.values()], axis=1)


class GroupUnlearningAttributor:
    """GUDA-style group scores: the rise of each target's loss after unlearning each group.

    cache(train, groups) computes the Fisher and baseline once per model version (through
    UnlearningAttributor.cache, including its on-disk cache); attribute(targets) returns
    (n_targets, n_groups) in the order of `group_names`.
    """

    def __init__(
        self,
        task: ModelAdapter,
        step_size: float = 0.003,
        steps: int = 1,
        common_scale: bool = True,
        fisher_weight: float = 1.0,
        fisher_samples: int = 256,
        precondition: float | None = 0.1,
        seed: int = 0,
        batch_size: int = 64,
        cache_dir=None,
        checkpoint: str | None = None,
    ) -> None:
        if not isinstance(common_scale, bool):
            raise ValueError(f"common_scale must be true or false, not {common_scale!r}")  # noqa: TRY004
        self.common_scale = common_scale
        # One step is the closed-form maximiser of the Fisher-regularised objective; further
        # steps add the pull towards theta_0 (each of the group's length).
        self.unlearner = UnlearningAttributor(
            task,
            steps=steps,
            step_size=step_size,
            fisher_weight=fisher_weight,
            fisher_samples=fisher_samples,
            precondition=precondition,
            relative=False,
            seed=seed,
            batch_size=batch_size,
            cache_dir=cache_dir,
            checkpoint=checkpoint,
        )
        self.groups: dict[str, list[int]] = {}
        self.lengths: dict[str, float] = {}

    @property
    def group_names(self) -> list[str]:
        return list(self.groups)

    def cache(
        self, train: list, groups: Mapping[str, Sequence], work_ids: Sequence[str] | None = None
    ) -> None:
        resolved = resolve_groups(groups, len(train), work_ids)
        u = self.unlearner
        u.cache(train)
        self.groups = resolved
        # Each group's step length: one backward over its works, at theta_0.
        params = u._params()
        theta0 = [p.detach().clone() for p in params]
        norm0 = _norm(theta0)
        fmean = u._fisher_mean()
        norms = {
            name: _norm(u._direction([train[i] for i in idx], theta0, fmean))
            for name, idx in resolved.items()
        }
        mean = float(np.mean(list(norms.values())))
        for name, dn in norms.items():
            rel = dn / mean if self.common_scale and mean > 0 else 1.0
            self.lengths[name] = u.step_size * norm0 * rel

    def attribute(self, targets: list) -> np.ndarray:
        """Scores (n_targets, n_groups): L_g(unlearned G) - L_g(served), summed token NLL."""
        if not self.groups:
            raise RuntimeError("call cache(train, groups) before attribute()")
        u = self.unlearner
        u._check(targets)
        base = u._losses(targets)
        out = np.zeros((len(targets), len(self.groups)), dtype=np.float64)
        for c, (name, idx) in enumerate(self.groups.items()):
            theta0 = u._unlearn([u.train[i] for i in idx], length=self.lengths[name])
            try:
                out[:, c] = (u._losses(targets) - base).numpy()
            finally:
                u._restore(theta0)
        return out

    def params(self) -> dict:
        return {**self.unlearner.params(), "common_scale": self.common_scale}


def top_group_agreement(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per target: does the predicted top group equal the true top group (bool array)."""
    return np.argmax(pred, axis=1) == np.argmax(truth, axis=1)


def per_target_spearman(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per target: Spearman correlation across groups of predicted and true scores."""
    from attribution.evaluate import spearman

    return np.array([spearman(p, t) for p, t in zip(pred, truth, strict=True)])


__all__ = [
    "GROUP_METHOD_PARAMS",
    "GroupUnlearningAttributor",
    "check_group_terms",
    "holder_shares",
    "per_target_spearman",
    "resolve_groups",
    "summed_instance_scores",
    "top_group_agreement",
]
