"""What both sandbox model folders (symbolic: sandbox/train.py, audio: sandbox/audio_train.py)
have in common: storing one without ever leaving half of it, the stored model version with its
named checkpoints, and the checkpoint switching their attribution adapters do."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn


def store(out_root: Path, fill: Callable[[Path], dict], log: logging.Logger) -> Path:
    """Build a model version in a private folder under out_root and move it to
    out_root/<model_version> in one rename. fill(folder) writes checkpoints/ and the rest and
    returns model_version.json's content ("model_version", "train_loss", ...)."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".training-", dir=out_root))
    tmp.chmod(0o755)  # mkdtemp makes it private; a model version is meant to be read by others
    try:
        (tmp / "checkpoints").mkdir()
        info = fill(tmp)
        (tmp / "model_version.json").write_text(json.dumps(info, indent=1))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-written version left behind
        raise
    final = out_root / info["model_version"]
    if final.exists():
        # Content-addressed: an existing folder of the same version holds the same weights.
        log.info("model version %s already stored at %s; keeping it", info["model_version"], final)
        shutil.rmtree(tmp)
    else:
        try:
            tmp.rename(final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp)  # a concurrent run stored the same version first
    log.info("stored %s (train loss %.4f) at %s", info["model_version"], info["train_loss"], final)
    return final


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
