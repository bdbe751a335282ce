"""What a platform's model must provide to be attributed: the model adapter protocol.

The engine never imports a model's code. A platform ships an *adapter*, a small class in its
own package, registered under the entry-point group ``tributary.model_adapters`` and named by
the ``"adapter"`` field of its model version's ``model_version.json``
(attribution/registry.py loads it). The adapter answers these questions:

* ``prepare(raw)``: turn one raw item into a model input ("example"). Raw items are what the
  licensor holds for a catalog work or receives for a generation: a token list for a symbolic
  model, the path of an audio file for an audio model. The same function prepares training
  works and generations, so both are seen the same way. A raw item the model cannot take
  raises ``InvalidExample`` with the rule it breaks; the generation is then rejected with
  that reason, never attributed on a guess.
* ``content_sha256(raw)``: the hash the platform's training manifest lists for the item, so
  the engine can check that the catalog copy it attributes is exactly what was trained on.
* ``per_example_loss(batch)``: the loss of each example of a batch, shape (B,),
  differentiable w.r.t. the attributed modules. For a next-token model the summed NLL; for a
  diffusion model the denoising loss at a fixed, shared set of timesteps and noise draws (the
  same draws for every example, otherwise the gradients compare noise, not music). Examples
  in a batch must not interact (no batch norm in train mode), so the gradient of the summed
  loss splits into per-example gradients.
* ``attributed_modules()``: the modules whose parameters become attribution features, in
  forward order, the output layer last (TRAK's default attributes only that one). Linear,
  Conv1d, Conv2d and Embedding layers are featurised from their inputs and output gradients
  without materialising a gradient; any other module (nn.MultiheadAttention, norms, custom
  blocks) through per-example gradients of its own parameters (attribution/layers.py).
* ``checkpoints()`` and ``load_checkpoint(name)``: the checkpoints of the model version that
  form the ensemble, and switching between them (into the same module objects).
* ``model_version``, ``name`` and ``version``: what the features are of; part of every cache
  key, with the bytes, dtype and shape of every example (attribution/hashing.py).

Optional:

* ``output_gradient(batch, outputs)``: d per_example_loss / d (output layer's output) in
  closed form; with it TRAK's default needs no autograd at all.
* ``embed(batch)``: (B, d) hidden states, for similarity with ``embedder="hidden"``.
* ``vocabulary()``: token strings in the ``<p:60> <d:0.5> <style:x> <bar>`` convention, for
  the black-box symbolic embedder.
* ``spectrogram(example)``: (n_bands, frames) log-magnitude array of an example, for the
  black-box audio embedder.
* ``manifest_hash``: the training manifest's column that ``content_sha256`` must equal
  (default ``"content_sha256"``).
* ``catalog_kind``: which of the licensor's copies of a work ``prepare`` takes: "tokens" (a
  token list, the default) or "audio" (the path of the catalog's rendered recording).
* ``training_items()``: the raw training items the platform stored with the model version,
  for runs without the licensor's catalog (tests, benchmarks).
* ``method_defaults``: ``{method: {parameter: value}}``, the attribution parameters the
  platform tuned for this model (for example TRAK's curvature and damping, chosen on held-out
  retraining as benchmarks/audio_attribution.py does). A contract's own parameters override
  them; the engine's defaults apply to the rest. Curvature and damping change meaning with
  the model's size and loss, so one engine-wide default cannot suit every model.
* ``null_items()``: raw pieces that copy no training work and that the model never trained
  on (a validation split, pieces written after the model was frozen), in the same form as
  generations. Contracts with the calibrated confidence rule ("pvalue") need them: their
  top-match z against the catalog is the null distribution a generation's p-value is read
  from (attribution/calibration.py). Draw them like the generations (the model's own samples
  of another seed are the simplest: benchmarks/calibration.py shows held-out pieces are not
  the same thing). At least 1/alpha - 1 are needed; about 20 / alpha (2,000 for alpha 0.01)
  keep the realised rate near alpha. A piece whose hash the manifest lists is refused.
* ``variants(example)``: the prepared example first, then transformed versions of it that
  undo what a copy may have done to a training work (for music: transposition, tempo,
  pitch shift, time stretch), as prepared examples. A contract's ``shares_policy``
  ``variants: N`` attributes the N versions the model finds most likely (the generation
  itself among them) and keeps the one whose top match stands out most
  (attribution/robust.py); the null is scored the same way.
* ``catalog_versions(example)``: the other side of the same question: transformed versions
  of a prepared *training* example (what a copy of it may look like: transposed, at another
  tempo), without the example itself. A contract's ``shares_policy`` ``catalog_versions:
  true`` scores every generation against the catalog and these versions, each a column of
  its work (attribution/versions.py); it costs that many times the training features, once
  per model version, and one attribution per generation. Needs the "pvalue" rule.

This module is import-light on purpose (no torch at import time): a platform's package can
import it to type its adapter without paying for the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # only for annotations: importing this module stays cheap
    import torch
    from torch import nn

ENTRY_POINT_GROUP = "tributary.model_adapters"
# The field of model_version.json that names the adapter's entry point.
ADAPTER_FIELD = "adapter"

Example = Any  # whatever prepare() returns: a token list, an array, a tensor, a dict of them


class InvalidExample(ValueError):
    """A raw item the model cannot take; the message names the rule it breaks."""


@runtime_checkable
class ModelAdapter(Protocol):
    name: str
    version: str

    @property
    def model_version(self) -> str: ...

    def prepare(self, raw: Any) -> Example:
        """A raw catalog item or generation output as the model's input; InvalidExample if
        it breaks a rule of the model (wrong vocabulary, too long, unreadable audio...)."""
        ...

    def content_sha256(self, raw: Any) -> str:
        """The hash the training manifest lists for this raw item."""
        ...

    def per_example_loss(self, batch: Sequence[Example]) -> torch.Tensor:
        """Loss of each example, shape (B,), differentiable w.r.t. the attributed modules."""
        ...

    def attributed_modules(self) -> list[nn.Module]:
        """The modules to attribute, in forward order, the output layer last."""
        ...

    def checkpoints(self) -> list[str]:
        """Names of the checkpoints of this model version that form the ensemble."""
        ...

    def load_checkpoint(self, name: str) -> None:
        """Make ``name`` the checkpoint that per_example_loss and attributed_modules use."""
        ...


class AdapterFactory(Protocol):
    """What an entry point of ``tributary.model_adapters`` loads: called with the model
    version's folder (and keyword options such as a loss reduction) it returns the adapter."""

    def __call__(self, model_version_dir: Path, **options: Any) -> ModelAdapter: ...
