"""Attribution of generated music to training works (see docs: DESIGN.md, Attribution).

Model-agnostic: a platform's model plugs in through an adapter (attribution/protocol.py)
found by entry point (attribution/registry.py). Never imports Airflow, nor any model's code:
DAG tasks call into this package, not the other way round.
"""

from attribution.calibration import NullDistribution, null_distribution
from attribution.pipeline import attribute_generations, make_attributor
from attribution.protocol import ENTRY_POINT_GROUP, InvalidExample, ModelAdapter
from attribution.registry import AdapterNotFound, load_adapter
from attribution.shares import ScoreSummary, SharesPolicy, policy_shares, scores_to_shares
from attribution.similarity import AudioEmbedder, SimilarityAttributor, SymbolicEmbedder
from attribution.trak import TRAKAttributor
from attribution.unlearning import UnlearningAttributor

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterNotFound",
    "AudioEmbedder",
    "InvalidExample",
    "ModelAdapter",
    "NullDistribution",
    "ScoreSummary",
    "SharesPolicy",
    "SimilarityAttributor",
    "SymbolicEmbedder",
    "TRAKAttributor",
    "UnlearningAttributor",
    "attribute_generations",
    "load_adapter",
    "make_attributor",
    "null_distribution",
    "policy_shares",
    "scores_to_shares",
]
