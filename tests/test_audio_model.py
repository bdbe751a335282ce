"""The audio platform's diffusion model: the tiny config trains, its version is reproducible,
and the denoising loss the attribution adapter calls behaves as documented."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from sandbox.audio_features import FeatureSettings, input_sha256
from sandbox.audio_model import (
    TINY_CONFIG,
    AudioDiffusion,
    AudioDiffusionConfig,
    denoising_loss,
    fixed_draws,
    hidden_states,
    sample,
)
from sandbox.audio_train import (
    ADAPTER,
    fit_audio_diffusion,
    load_audio_model_version,
    train_audio_model_version,
)
from sandbox.train import torch_threads

FEATURES = FeatureSettings()
CONFIG = AudioDiffusionConfig(n_mels=FEATURES.n_mels, frames=FEATURES.frames, **TINY_CONFIG)
RECIPE = {"steps": 40, "batch_size": 8, "lr": 3e-3}


def _examples(n: int = 12) -> pd.DataFrame:
    """Spectrogram-like inputs: each example a few horizontal partials switching on and off,
    on a floor of -1 (what a rendered line looks like through sandbox.audio_features)."""
    rng = np.random.default_rng(0)
    xs = []
    for _ in range(n):
        x = np.full((FEATURES.n_mels, FEATURES.frames), -1.0, dtype=np.float32)
        f0 = int(rng.integers(4, 16))
        for start in range(0, FEATURES.frames, 16):
            f = f0 + int(rng.integers(-3, 4))
            for k in range(1, 4):
                if f * k < FEATURES.n_mels:
                    x[f * k, start : start + 12] = 1.0 - 0.4 * (k - 1)
        xs.append(x)
    return pd.DataFrame({
        "work_id": [f"W{i:03d}" for i in range(n)],
        "token_sha256": [f"{i:064x}" for i in range(n)],
        "pcm_sha256": [f"{i + 100:064x}" for i in range(n)],
        "input": xs,
        "input_sha256": [input_sha256(x) for x in xs],
    })  # fmt: skip


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """The same data and seed trained twice into two folders."""
    ex = _examples()
    roots = [tmp_path_factory.mktemp(f"models{i}") for i in range(2)]
    paths = [train_audio_model_version(ex, r, CONFIG, FEATURES, seed=0, **RECIPE) for r in roots]
    return ex, paths


def test_model_version_is_content_addressed_and_reproducible(versions):
    ex, (a, b) = versions
    assert a.name == b.name and a.name.startswith("sbx-audio-")
    info = json.loads((a / "model_version.json").read_text())
    assert (
        info["model_version"] == a.name and info["adapter"] == ADAPTER == "sandbox-audio-diffusion"
    )
    assert info["model_sha256"].startswith(a.name.removeprefix("sbx-audio-"))
    assert len(info["checkpoints"]) >= 3 and info["seed"] == 0
    for name in info["checkpoints"]:  # byte-identical checkpoints from the same run
        assert (a / "checkpoints" / name).read_bytes() == (b / "checkpoints" / name).read_bytes()
    mv = load_audio_model_version(a)
    assert list(mv.manifest["work_id"]) == list(ex["work_id"])
    assert list(mv.manifest["input_sha256"]) == list(ex["input_sha256"])
    assert {"example_index", "token_sha256", "pcm_sha256"} <= set(mv.manifest.columns)
    assert mv.config == CONFIG and mv.features == FEATURES
    np.testing.assert_array_equal(mv.train_inputs(), np.stack(ex["input"]))
    # a different seed is a different version
    other = train_audio_model_version(ex, a.parent / "other", CONFIG, FEATURES, seed=1, **RECIPE)
    assert other.name != a.name


def test_tiny_model_learns_the_training_data(versions):
    ex, (path, _) = versions
    mv = load_audio_model_version(path)
    x = torch.from_numpy(mv.train_inputs())
    timesteps, noise = fixed_draws(mv.config, k=8, seed=0)
    with torch.no_grad():
        trained = denoising_loss(mv.load_model(), x, timesteps, noise)
        first = denoising_loss(mv.load_model(mv.checkpoints[0]), x, timesteps, noise)
        torch.manual_seed(0)
        untrained = denoising_loss(AudioDiffusion(mv.config).eval(), x, timesteps, noise)
    assert trained.shape == (len(ex),)
    assert float(trained.mean()) < float(first.mean()) < float(untrained.mean())
    assert float(trained.mean()) < 0.8 * float(untrained.mean())
    assert mv.info["train_loss"] < 0.8 * float(untrained.mean())


def test_denoising_loss_is_per_example_over_shared_fixed_draws(versions):
    _, (path, _) = versions
    mv = load_audio_model_version(path)
    model = mv.load_model()
    x = torch.from_numpy(mv.train_inputs()[:4])
    t1, n1 = fixed_draws(mv.config, k=4, seed=3)
    t2, n2 = fixed_draws(mv.config, k=4, seed=3)
    assert torch.equal(t1, t2) and torch.equal(n1, n2)
    assert len(set(t1.tolist())) == 4 and t1.min() >= 0 and t1.max() < mv.config.num_train_timesteps
    with torch.no_grad():
        batch = denoising_loss(model, x, t1, n1)
        # one example alone gets the loss it gets in a batch: nothing mixes across examples
        alone = torch.stack([denoising_loss(model, x[i : i + 1], t1, n1)[0] for i in range(4)])
        # the mean over K equals the mean of K single-draw losses
        per_draw = torch.stack(
            [denoising_loss(model, x, t1[k : k + 1], n1[k : k + 1]) for k in range(4)]
        ).mean(0)
    torch.testing.assert_close(batch, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batch, per_draw, rtol=1e-4, atol=1e-5)
    # differentiable in the parameters, one gradient per example
    loss = denoising_loss(model, x[:1], t1, n1)
    loss.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ValueError, match="noise must be"):
        denoising_loss(model, x, t1, n1[:2])


def test_keep_mask_retrains_with_the_same_draws(versions):
    ex, _ = versions
    x = torch.from_numpy(np.stack(ex["input"]))
    with torch_threads(1):
        full, _ = fit_audio_diffusion(x, CONFIG, 10, 4, 3e-3, seed=0, log_every=0)
        kept, _ = fit_audio_diffusion(
            x, CONFIG, 10, 4, 3e-3, seed=0, log_every=0, keep=[True] * len(x)
        )
        without, _ = fit_audio_diffusion(x, CONFIG, 10, 4, 3e-3, seed=0, log_every=0,
                                         keep=[i != 0 for i in range(len(x))])  # fmt: skip
    sd_full, sd_kept, sd_without = full.state_dict(), kept.state_dict(), without.state_dict()
    assert all(torch.equal(sd_full[k], sd_kept[k]) for k in sd_full)
    assert any(not torch.equal(sd_full[k], sd_without[k]) for k in sd_full)


def test_sampling_is_seeded_and_hidden_states_are_per_example(versions):
    _, (path, _) = versions
    model = load_audio_model_version(path).load_model()
    with torch_threads(1):
        a, b, c = (sample(model, 3, torch.Generator().manual_seed(s), steps=10) for s in (5, 5, 6))
    assert a.shape == (3, CONFIG.n_mels, CONFIG.frames) and a.abs().max() <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)
    with torch.no_grad():
        h = hidden_states(model, a)
        h0 = hidden_states(model, a[:1])
    assert h.shape == (3, CONFIG.block_out_channels[-1])
    torch.testing.assert_close(h[:1], h0, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("measure", ["loss", "square"])
def test_adapter_output_gradient_equals_autograd(versions, measure):
    """The closed-form gradient TRAK's default uses, for both measurement functions."""
    from sandbox.audio_adapter import load

    _, (path, _) = versions
    adapter = load(path, measure=measure)
    batch = [adapter.prepare(x) for x in adapter.training_items()[:3]]
    rec = {}
    out_layer = adapter.attributed_modules()[-1]
    hook = out_layer.register_forward_hook(lambda m, i, o: rec.update(out=o))
    loss = adapter.per_example_loss(batch).sum()
    hook.remove()
    (expected,) = torch.autograd.grad(loss, rec["out"])
    got = adapter.output_gradient(batch, rec["out"].detach())
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-8)


def test_adapter_measure_is_part_of_the_identity(versions):
    from attribution.hashing import adapter_identity
    from sandbox.audio_adapter import load

    _, (path, _) = versions
    loss, square = load(path), load(path, measure="square")
    # the default keeps the identity it had before the option existed (cache keys stay valid)
    assert loss.options == {"draws": 8, "draw_seed": 0}
    assert adapter_identity(loss) != adapter_identity(square)
    x = [loss.prepare(v) for v in loss.training_items()[:2]]
    with torch.no_grad():
        assert not torch.allclose(loss.per_example_loss(x), square.per_example_loss(x))
    with pytest.raises(ValueError, match="measure"):
        load(path, measure="cube")


def test_retrainer_reproduces_the_stored_run_and_measures_like_the_adapter(versions):
    """The benchmarks' retrainer (sandbox/audio_eval.py) with every example kept is the
    stored training run, and its losses are the adapter's per_example_loss."""
    from sandbox.audio_adapter import load
    from sandbox.audio_eval import AudioRetrainSpec, target_losses

    _, (path, _) = versions
    adapter = load(path)
    train = [adapter.prepare(x) for x in adapter.training_items()]
    targets = train[:3]
    spec = AudioRetrainSpec(CONFIG, RECIPE["steps"], RECIPE["batch_size"], RECIPE["lr"], seed=0)
    with torch_threads(1):
        full = spec(train, None, targets)
        without = spec(train, [i != 0 for i in range(len(train))], targets)
    with torch.no_grad():
        served = adapter.per_example_loss(targets).double().numpy()
    np.testing.assert_array_equal(full, target_losses(adapter.model, targets))
    np.testing.assert_allclose(full, served, rtol=1e-6)
    assert not np.array_equal(full, without)
