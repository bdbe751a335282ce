"""Attribution of generated music to training works (see docs: DESIGN.md, Attribution).

Never imports Airflow: DAG tasks call into this package, not the other way round.
"""

from attribution.adapter import ModelAdapter, SandboxGPTAdapter
from attribution.pipeline import attribute_generations
from attribution.shares import scores_to_shares
from attribution.trak import TRAKAttributor

__all__ = [
    "ModelAdapter",
    "SandboxGPTAdapter",
    "TRAKAttributor",
    "attribute_generations",
    "scores_to_shares",
]
