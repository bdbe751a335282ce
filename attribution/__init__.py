"""Attribution of generated music to training works (see docs: DESIGN.md, Attribution).

Never imports Airflow: DAG tasks call into this package, not the other way round.
"""

from attribution.adapter import ModelAdapter, SandboxGPTAdapter
from attribution.pipeline import attribute_generations
from attribution.shares import ScoreSummary, SharesPolicy, policy_shares, scores_to_shares
from attribution.similarity import SimilarityAttributor, SymbolicEmbedder
from attribution.trak import TRAKAttributor
from attribution.unlearning import UnlearningAttributor

__all__ = [
    "ModelAdapter",
    "SandboxGPTAdapter",
    "ScoreSummary",
    "SharesPolicy",
    "SimilarityAttributor",
    "SymbolicEmbedder",
    "TRAKAttributor",
    "UnlearningAttributor",
    "attribute_generations",
    "policy_shares",
    "scores_to_shares",
]
