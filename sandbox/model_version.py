"""What both sandbox model folders (symbolic: sandbox/train.py, audio: sandbox/audio_train.py)
have in common: a stored model version with named checkpoints, and the checkpoint switching
their attribution adapters do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn


@dataclass(kw_only=True)
class StoredModelVersion:
    """A model version folder: model_version.json (info), config, manifest.parquet and
    checkpoints/<name>. Subclasses name the model class in `build`."""

    path: Path
    info: dict
    config: Any
    manifest: pd.DataFrame
    train_params: dict = field(default_factory=dict)

    def build(self) -> nn.Module:
        raise NotImplementedError

    @property
    def model_version(self) -> str:
        return self.info["model_version"]

    @property
    def checkpoints(self) -> list[str]:
        return list(self.info["checkpoints"])

    def load_model(self, checkpoint: str | None = None) -> nn.Module:
        """The model at checkpoint (default: the last, served one), in eval mode."""
        name = checkpoint or self.checkpoints[-1]
        if name not in self.checkpoints:
            raise KeyError(f"{name!r} is not a checkpoint of {self.model_version}")
        model = self.build()
        state = torch.load(self.path / "checkpoints" / name, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model.eval()


class CheckpointSwitcher:
    """One live model whose weights are swapped between a model version's checkpoints.

    Copied into the same modules, so hooks and module lists a caller holds stay valid. States
    are kept in memory after the first read: an ensemble switches checkpoints for every batch
    of generations, and a disk read per switch cost more than the attribution itself
    (measured, benchmarks/attribution_quality.py). Copying tensor by tensor instead of
    load_state_dict: its key checks cost about as much as the forward of one generation of the
    symbolic sandbox model (0.3 ms per switch, measured)."""

    def __init__(self, names: list[str], model: nn.Module, read: Callable[[str], nn.Module]):
        self.names = list(names)
        self._read = read
        self.current = self.names[-1]  # the model given is the served, last checkpoint
        self._live = list(model.state_dict(keep_vars=True).values())
        self._states = {self.current: [t.detach().clone() for t in self._live]}

    def load(self, name: str) -> None:
        if name == self.current:
            return
        if name not in self._states:
            state = self._read(name).state_dict()
            self._states[name] = [v.detach().clone() for v in state.values()]
        with torch.no_grad():
            for live, saved in zip(self._live, self._states[name], strict=True):
                live.copy_(saved)
        self.current = name
