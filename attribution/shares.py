"""Turn one generation's attribution scores into exact decimal shares per work.

Shares are money-adjacent, so they are Decimals quantised DOWN to SHARE_QUANTUM: rounding
down can only move value into the explicit residual row, never create more than 1 in total,
and the residual makes every generation's rows sum to exactly Decimal(1).

Two entry points:

* ``scores_to_shares`` (legacy, kept for callers of the first build): top-k works by
  positive score, normalised by the positive mass of ALL works. On a real model the mass is
  spread thinly over every training work, so even a verbatim copy got ~2 % and the residual
  ~96 %: a faithful number, but not what a contract means by "the copy gets paid".
* ``policy_shares`` with a ``SharesPolicy`` a contract names. The residual row is the
  *training share*: the lead's settlement spreads it over the whole manifest pro rata.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from decimal import ROUND_DOWN, Decimal

import numpy as np

SHARE_QUANTUM = Decimal("0.000000001")  # 1e-9

CONFIDENCE_RULES = ("none", "zscore", "margin", "mass", "pvalue")


@dataclass(frozen=True)
class SharesPolicy:
    """How a contract turns attribution scores into a generation's shares.

    output_share: fraction of each generation's royalty that follows attribution (the
        output royalty); the rest, 1 - output_share, is the training royalty and goes to the
        residual row, spread pro rata over the manifest by settlement.
    top_k: at most this many works share the output fraction, by their weights (positive
        score, summed over a work's examples) normalised over the top-k, so a verbatim copy
        that dominates its runner-up gets most of the output share.
    min_share: a work whose share of the whole generation would fall below this is dropped
        and the others renormalised (avoids paying dust that costs more to settle than it is
        worth); what no work can take goes to the residual.
    confidence / min_confidence: the rule under which a generation is confident enough to
        follow attribution at all; otherwise ALL of it is residual (pro rata).
          "zscore": (top score - mean) / std over every training example >= min_confidence.
              A planted copy stands tens of standard deviations out; an ordinary generation
              a few. Streamable (needs only sum, sum of squares and the top score), so it
              also works with block-wise top-k scoring of a million-work catalog.
          "margin": top work weight / runner-up weight >= min_confidence.
          "mass": fraction of the positive score mass held by the top-k >= min_confidence.
          "pvalue": the z of the top match (as "zscore") tested against an explicit null
              distribution: the top-match z of pieces that copy no training work, scored by
              the same attributor against the same catalog (attribution/calibration.py).
              Confident when p <= alpha. min_confidence is not used.
          "none": always confident.
    alpha: the significance level of "pvalue": the fraction of generations that copy
        nothing which may still be paid by output share. The statistic is the MAXIMUM over
        the catalog, and the null describes that maximum, so alpha already controls the
        family-wise error over every work of the catalog (no Bonferroni on top: that would
        count the n works twice). It is a rate per generation, deliberately not controlled
        over the generations of a month: alpha is the share of ordinary generations a
        contract accepts to pay by attribution.
    """

    output_share: float = 1.0
    top_k: int = 8
    min_share: float = 0.0
    confidence: str = "zscore"
    min_confidence: float = 5.0
    alpha: float = 0.01
    # Robust matching (attribution/robust.py): how many of the generation's versions (itself
    # and the adapter's variants(): transposed, at another tempo...) are attributed, the most
    # likely under the model first, keeping the one whose top match stands out most; the
    # "pvalue" null is scored the same way. 0: the generation alone.
    variants: int = 0
    # Robust matching on the catalog's side (attribution/versions.py): every training work is
    # also scored as the adapter's catalog_versions() (transposed, at another tempo...), as
    # columns of that work. Only with "pvalue", whose null is scored the same way.
    catalog_versions: bool = False

    def __post_init__(self) -> None:
        if not (0.0 <= float(self.output_share) <= 1.0):
            raise ValueError(f"output_share must be in [0, 1], got {self.output_share}")
        if int(self.top_k) < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not (0.0 <= float(self.min_share) <= 1.0):
            raise ValueError(f"min_share must be in [0, 1], got {self.min_share}")
        if self.confidence not in CONFIDENCE_RULES:
            raise ValueError(
                f"confidence must be one of {CONFIDENCE_RULES}, got {self.confidence!r}"
            )
        if not math.isfinite(float(self.min_confidence)):
            raise ValueError("min_confidence must be finite")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float):
            raise TypeError(f"alpha must be a number in (0, 1), got {self.alpha!r}")
        if not (0.0 < float(self.alpha) < 1.0):  # NaN fails this too
            raise ValueError(f"alpha must be in (0, 1) (a significance level), got {self.alpha}")
        if isinstance(self.variants, bool) or not isinstance(self.variants, int):
            raise TypeError(f"variants must be a whole number >= 0, got {self.variants!r}")
        if self.variants < 0:
            raise ValueError(f"variants must be >= 0, got {self.variants}")
        if not isinstance(self.catalog_versions, bool):
            raise TypeError(f"catalog_versions must be true or false, got {self.catalog_versions!r}")
        if self.catalog_versions and self.confidence != "pvalue":
            # a top z over (1 + v) x n columns is larger than over n: a fixed threshold
            # would pay ordinary generations; the null, scored alike, accounts for it
            raise ValueError(
                'catalog_versions needs confidence "pvalue" (its null is scored against the '
                f"same versions), not {self.confidence!r}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        # Left out at its default, so policies recorded before robust matching read the same.
        if not d["variants"]:
            del d["variants"]
        if not d["catalog_versions"]:
            del d["catalog_versions"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> SharesPolicy:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown SharesPolicy fields: {sorted(unknown)}")
        return cls(**d)


@dataclass
class ScoreSummary:
    """What the shares need of one generation's scores over n training examples.

    Either built from a full score row (``from_scores``) or accumulated block-wise by the
    streaming scorer (attribution/scoring.py) so the full row never has to exist.
    top_idx/top_scores: the best examples, descending; mean/std over all n examples;
    pos_sum: sum of positive scores over all n examples.
    """

    top_idx: np.ndarray
    top_scores: np.ndarray
    n: int
    mean: float
    std: float
    pos_sum: float

    @classmethod
    def from_scores(cls, scores: np.ndarray, keep: int | None = None) -> ScoreSummary:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(s)):
            raise ValueError("scores contain NaN or infinity")
        keep = len(s) if keep is None else min(keep, len(s))
        # Stable sort on -score, then index: ties resolve the same way on every run.
        order = np.argsort(-s, kind="stable")[:keep]
        return cls(
            top_idx=order,
            top_scores=s[order],
            n=len(s),
            mean=float(s.mean()) if len(s) else 0.0,
            std=float(s.std()) if len(s) else 0.0,
            pos_sum=float(np.maximum(s, 0).sum()),
        )


def top_z(summary: ScoreSummary) -> float:
    """(top score - mean) / std over every training example; 0 when the scores are flat."""
    if summary.std <= 0 or len(summary.top_scores) == 0:
        return 0.0
    return (float(summary.top_scores[0]) - summary.mean) / summary.std


def confidence_of(summary: ScoreSummary, rule: str, weights: list[float], top_k: int) -> float:
    """The number the policy's confidence rule compares with min_confidence ("pvalue": the
    top z that its null distribution turns into a p-value)."""
    if rule == "none":
        return math.inf
    if not weights:
        return 0.0
    if rule in ("zscore", "pvalue"):
        return top_z(summary)
    if rule == "margin":
        if len(weights) < 2 or weights[1] <= 0:
            return math.inf
        return weights[0] / weights[1]
    if rule == "mass":
        return sum(weights[:top_k]) / summary.pos_sum if summary.pos_sum > 0 else 0.0
    raise ValueError(f"unknown confidence rule {rule!r}")


def policy_shares(
    summary: ScoreSummary | np.ndarray,
    work_ids: list[str],
    policy: SharesPolicy,
    null=None,
) -> tuple[list[tuple[str | None, Decimal, float]], float, bool]:
    """Rows (work_id, share, weight) then (None, residual, nan); plus confidence, fallback.

    null: for the "pvalue" rule, the null distribution of the top z (anything with
    ``p_value(z)``, e.g. attribution.calibration.NullDistribution); required by that rule.

    work_ids are per training example (len n); examples of one work are summed. With a
    streaming summary only the kept top examples are summed, which is exact whenever a
    work's examples all make the kept list (the streaming scorer keeps several times top_k).
    """
    if not isinstance(summary, ScoreSummary):
        summary = ScoreSummary.from_scores(summary)
    if summary.n != len(work_ids):
        raise ValueError(f"{summary.n} scores but {len(work_ids)} work ids")
    if not np.all(np.isfinite(summary.top_scores)):
        raise ValueError("scores contain NaN or infinity")
    per_work: dict[str, float] = defaultdict(float)
    for i, s in zip(summary.top_idx, summary.top_scores, strict=True):
        if s > 0:  # examples whose training made the generation less likely carry no share
            per_work[work_ids[int(i)]] += float(s)
    ranked = sorted(per_work.items(), key=lambda wv: (-wv[1], wv[0]))
    weights = [v for _, v in ranked]
    conf = confidence_of(summary, policy.confidence, weights, policy.top_k)
    out_d = Decimal(str(policy.output_share))
    if policy.confidence == "pvalue":
        if null is None:
            raise ValueError('confidence rule "pvalue" needs a null distribution of the top z')
        confident = null.p_value(conf) <= policy.alpha
    else:
        confident = conf >= policy.min_confidence
    fallback = not confident or out_d == 0 or not ranked
    rows: list[tuple[str | None, Decimal, float]] = []
    if not fallback:
        chosen = ranked[: policy.top_k]
        min_d = Decimal(str(policy.min_share))
        while chosen:
            total = sum((Decimal(v) for _, v in chosen), Decimal(0))
            shares = [
                (w, (out_d * Decimal(v) / total).quantize(SHARE_QUANTUM, rounding=ROUND_DOWN), v)
                for w, v in chosen
            ]
            # Drop the smallest under min_share and renormalise: the others then grow, so
            # one pass per dropped work is enough and the loop ends.
            if shares[-1][1] >= min_d and shares[-1][1] > 0:
                rows = shares
                break
            chosen = chosen[:-1]
        fallback = not rows
    residual = Decimal(1) - sum((s for _, s, _ in rows), Decimal(0))
    if residual < 0:  # cannot happen with ROUND_DOWN; guard the invariant money relies on
        raise ArithmeticError(f"shares exceed 1 by {-residual}")
    rows.append((None, residual, math.nan))
    return rows, conf, fallback


def scores_to_shares(
    scores: np.ndarray, work_ids: list[str], top_k: int = 8
) -> list[tuple[str | None, Decimal]]:
    """Legacy rule: rows (work_id, share) for the top_k works by positive score, then
    (None, residual), shares relative to the positive mass of ALL works.

    Negative scores carry no share. Examples of the same work are summed before ranking.
    Ties rank by work_id so the result never depends on manifest order.
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
    total = sum(per_work.values())
    if total <= 0.0:
        return [(None, Decimal(1))]

    ranked = sorted(
        ((w, v) for w, v in per_work.items() if v > 0.0), key=lambda wv: (-wv[1], wv[0])
    )[:top_k]
    total_d = sum((Decimal(v) for v in per_work.values()), Decimal(0))
    rows: list[tuple[str | None, Decimal]] = []
    for wid, v in ranked:
        share = (Decimal(v) / total_d).quantize(SHARE_QUANTUM, rounding=ROUND_DOWN)
        rows.append((wid, share))
    residual = Decimal(1) - sum((s for _, s in rows), Decimal(0))
    if residual < 0:
        raise ArithmeticError(f"shares exceed 1 by {-residual}")
    rows.append((None, residual))
    return rows
