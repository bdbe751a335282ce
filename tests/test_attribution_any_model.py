"""The engine attributes any model: adapters found by entry point, any layer kind, float data.

The models here are defined only in this file and reach the engine exactly as a platform's
package would: through the ``tributary.model_adapters`` entry-point group (a dist-info folder
on sys.path declares them) and a model version folder whose model_version.json names the
adapter. Nothing of sandbox/ is used.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from attribution.hashing import examples_digest
from attribution.pipeline import attribute_generations, make_attributor
from attribution.protocol import ENTRY_POINT_GROUP, InvalidExample
from attribution.registry import AdapterNotFound, available_adapters, load_adapter
from attribution.trak import TRAKAttributor

VOCAB, SEQ = 24, 20


# Tiny models: one intra-op thread for the whole module (conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- two platform models, defined here only ------------------------------------------------


class EncoderLM(nn.Module):
    """A next-token model from torch's own TransformerEncoder (causal mask)."""

    def __init__(self, d: int = 32, heads: int = 2, layers: int = 1) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, d)
        self.pos = nn.Embedding(SEQ, d)
        layer = nn.TransformerEncoderLayer(d, heads, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, VOCAB)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        h = self.tok(idx) + self.pos(torch.arange(T))
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        return self.head(self.encoder(h, mask=mask, is_causal=True))


def lm_loss(model: EncoderLM, batch: list[list[int]]) -> torch.Tensor:
    idx = torch.tensor(batch, dtype=torch.long)
    logits = model(idx[:, :-1])
    nll = nn.functional.cross_entropy(
        logits.reshape(-1, VOCAB), idx[:, 1:].reshape(-1), reduction="none"
    )
    return nll.reshape(len(batch), -1).sum(1)


class ConvDenoiser(nn.Module):
    """A small 1-D conv noise predictor; the timestep enters as an extra input channel."""

    def __init__(self, channels: int = 4, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(channels + 1, width, 5, padding=2),
            nn.GELU(),
            nn.Conv1d(width, width, 5, padding="same"),
            nn.GELU(),
            nn.Conv1d(width, channels, 1),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = (t.float() / 100.0)[:, None, None].expand(-1, 1, x.shape[-1])
        return self.net(torch.cat([x, tt], dim=1))


STEPS_T = 100
BETAS = torch.linspace(1e-4, 0.05, STEPS_T)
ALPHA_BAR = torch.cumprod(1 - BETAS, 0)


def fixed_draws(k: int, shape: tuple[int, int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The shared timesteps and noise of the denoising loss (the same for every example)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, STEPS_T, (k,), generator=g), torch.randn(k, *shape, generator=g)


def denoise_loss(model: ConvDenoiser, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor):
    """Per-example mean squared error over K draws; rows example-major (B*K)."""
    B, K = x0.shape[0], len(t)
    ab = ALPHA_BAR[t].repeat(B)[:, None, None]
    x0r = x0.repeat_interleave(K, 0)
    eps = noise.repeat(B, 1, 1)
    xt = ab.sqrt() * x0r + (1 - ab).sqrt() * eps
    pred = model(xt, t.repeat(B))
    return ((pred - eps) ** 2).mean((1, 2)).reshape(B, K).mean(1)


# -- their adapters, as a platform would ship them --------------------------------------------


class _CheckpointAdapter:
    """Checkpoints are state_dicts in <folder>/checkpoints/, loaded into the same modules."""

    version = "1"

    def __init__(self, folder: Path, model: nn.Module) -> None:
        self.folder = Path(folder)
        self.info = json.loads((self.folder / "model_version.json").read_text())
        self.model = model.eval()
        self.load_checkpoint(self.info["checkpoints"][-1])

    @property
    def model_version(self) -> str:
        return self.info["model_version"]

    def checkpoints(self) -> list[str]:
        return list(self.info["checkpoints"])

    def load_checkpoint(self, name: str) -> None:
        state = torch.load(self.folder / "checkpoints" / name, weights_only=True)
        self.model.load_state_dict(state)


class EncoderAdapter(_CheckpointAdapter):
    name = "test-encoder"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, EncoderLM())

    def prepare(self, raw) -> list[int]:
        if not isinstance(raw, list) or len(raw) != SEQ:
            raise InvalidExample(f"a piece has exactly {SEQ} tokens")
        if not all(isinstance(t, int) and 0 <= t < VOCAB for t in raw):
            raise InvalidExample(f"tokens must be integers in [0, {VOCAB})")
        return raw

    def content_sha256(self, raw) -> str:
        return hashlib.sha256(np.asarray(raw, dtype="<i8").tobytes()).hexdigest()

    def per_example_loss(self, batch):
        return lm_loss(self.model, batch)

    def attributed_modules(self) -> list[nn.Module]:
        layer = self.model.encoder.layers[0]
        return [self.model.tok, layer.self_attn, layer.linear1, self.model.head]


class ConvAdapter(_CheckpointAdapter):
    name = "test-conv-denoiser"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, ConvDenoiser())
        self.t, self.noise = fixed_draws(4, (4, 32))

    def prepare(self, raw) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(raw, dtype=np.float32))
        if x.shape != (4, 32) or not torch.isfinite(x).all():
            raise InvalidExample("a signal is a finite (4, 32) array")
        return x

    def content_sha256(self, raw) -> str:
        return hashlib.sha256(np.asarray(raw, dtype="<f4").tobytes()).hexdigest()

    def per_example_loss(self, batch):
        return denoise_loss(self.model, torch.stack(list(batch)), self.t, self.noise)

    def attributed_modules(self) -> list[nn.Module]:
        return [self.model.net[0], self.model.net[2], self.model.net[4]]


def load_encoder(folder: Path, **options) -> EncoderAdapter:
    return EncoderAdapter(folder)


def load_conv(folder: Path, **options) -> ConvAdapter:
    return ConvAdapter(folder)


@pytest.fixture(scope="module")
def installed_adapters(tmp_path_factory):
    """A dist-info folder on sys.path declaring both adapters: the entry-point mechanism a
    platform's installed package uses, without installing anything."""
    import sys

    site = tmp_path_factory.mktemp("site")
    dist = site / "test_platform_adapters-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: test-platform-adapters\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        "test-encoder = test_attribution_any_model:load_encoder\n"
        "test-conv-denoiser = test_attribution_any_model:load_conv\n"
    )
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))


def store_version(root: Path, name: str, adapter: str, states: list[dict], manifest: pd.DataFrame):
    """A model version folder as a platform ships it."""
    folder = root / name
    (folder / "checkpoints").mkdir(parents=True)
    names = []
    for i, st in enumerate(states):
        names.append(f"ckpt-{i}.pt")
        torch.save(st, folder / "checkpoints" / names[-1])
    (folder / "model_version.json").write_text(
        json.dumps({"model_version": name, "adapter": adapter, "checkpoints": names})
    )
    manifest.to_parquet(folder / "manifest.parquet")
    return folder


def train(model: nn.Module, loss_fn, data: list, steps: int, seed: int, lr: float = 3e-3):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    states = []
    model.train()
    for step in range(1, steps + 1):
        ix = torch.randint(len(data), (8,), generator=g).tolist()
        loss = loss_fn(model, [data[i] for i in ix]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % (steps // 3) == 0:
            states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return states[-3:]


@pytest.fixture(scope="module")
def encoder_version(installed_adapters, tmp_path_factory):
    rng = np.random.default_rng(1)
    pieces = []
    for _ in range(40):  # each piece repeats its own short motif
        motif = rng.integers(1, VOCAB, int(rng.integers(3, 6))).tolist()
        pieces.append((motif * SEQ)[:SEQ])
    model = EncoderLM()
    states = train(model, lm_loss, pieces, 240, seed=0)
    a = EncoderAdapter.__new__(EncoderAdapter)
    manifest = pd.DataFrame(
        {
            "work_id": [f"w{i:02d}" for i in range(40)],
            "content_sha256": [EncoderAdapter.content_sha256(a, p) for p in pieces],
        }
    )
    root = tmp_path_factory.mktemp("encoder")
    return store_version(root, "enc-v1", "test-encoder", states, manifest), pieces


@pytest.fixture(scope="module")
def conv_version(installed_adapters, tmp_path_factory):
    rng = np.random.default_rng(2)
    x = np.linspace(0, 2 * math.pi, 32)
    signals = []
    for _ in range(30):  # smooth multi-band signals
        f = rng.uniform(0.5, 4, size=(4, 1))
        ph = rng.uniform(0, 2 * math.pi, size=(4, 1))
        signals.append(np.sin(f * x + ph).astype(np.float32))
    model = ConvDenoiser()

    def loss_fn(m, batch):
        # training draws fresh noise, as a real diffusion model does
        tt = torch.randint(5, STEPS_T, (2,))
        nn_ = torch.randn(2, 4, 32)
        return denoise_loss(m, torch.stack([torch.from_numpy(b) for b in batch]), tt, nn_)

    states = train(model, loss_fn, signals, 300, seed=0)
    a = ConvAdapter.__new__(ConvAdapter)
    manifest = pd.DataFrame(
        {
            "work_id": [f"s{i:02d}" for i in range(30)],
            "content_sha256": [ConvAdapter.content_sha256(a, s) for s in signals],
        }
    )
    root = tmp_path_factory.mktemp("conv")
    return store_version(root, "conv-v1", "test-conv-denoiser", states, manifest), signals


# -- the engine through entry points ----------------------------------------------------------


def test_adapters_are_found_by_entry_point_and_named_by_the_model_version(
    encoder_version, tmp_path
):
    folder, _ = encoder_version
    assert {"test-encoder", "test-conv-denoiser"} <= set(available_adapters())
    adapter = load_adapter(folder)
    assert isinstance(adapter, EncoderAdapter) and adapter.model_version == "enc-v1"
    unnamed = tmp_path / "unnamed"
    unnamed.mkdir()
    (unnamed / "model_version.json").write_text(json.dumps({"model_version": "x"}))
    with pytest.raises(AdapterNotFound, match="names no 'adapter'"):
        load_adapter(unnamed)
    (unnamed / "model_version.json").write_text(
        json.dumps({"model_version": "x", "adapter": "nope"})
    )
    with pytest.raises(AdapterNotFound, match="no installed package provides adapter 'nope'"):
        load_adapter(unnamed)


def _planted_first(folder: Path, train_items: list, gens: list, method: str, params: dict, tmp):
    shares, rejected = attribute_generations(
        folder,
        gens,
        tmp / "cache",
        train_items=train_items,
        method=method,
        method_params=params,
        policy={"top_k": 3, "confidence": "none"},
    )
    assert rejected.empty
    top = shares[shares["rank"] == 1].set_index("generation_id")["work_id"]
    return top


def test_transformer_encoder_with_attention_layers_ranks_planted_copies_first(
    encoder_version, tmp_path
):
    folder, pieces = encoder_version
    rng = np.random.default_rng(5)
    planted = [3, 11, 26, 37]
    gens = []
    for w in planted:
        copy = list(pieces[w])
        copy[int(rng.integers(2, SEQ))] = int(rng.integers(1, VOCAB))  # one token changed
        gens.append((f"g{w}", copy))
    # every module kind of the adapter, attention's packed projection included
    top = _planted_first(folder, pieces, gens, "trak", {"layers": "all"}, tmp_path)
    assert top.to_dict() == {f"g{w}": f"w{w:02d}" for w in planted}
    att = make_attributor("trak", load_adapter(folder), layers="all")
    kinds = [layer.kind for layer in att.modules()]
    # attention's packed in_proj and its out_proj are parameter blocks (never called as modules)
    assert kinds == ["embedding", "params", "params", "linear", "linear"]


def test_conv_denoiser_ranks_planted_copies_first_with_every_method(conv_version, tmp_path):
    folder, signals = conv_version
    rng = np.random.default_rng(6)
    planted = [2, 9, 17, 28]
    gens = [
        (f"g{w}", signals[w] + 0.02 * rng.standard_normal(signals[w].shape).astype(np.float32))
        for w in planted
    ]
    want = {f"g{w}": f"s{w:02d}" for w in planted}
    for method, params in [("trak", {}), ("trak", {"layers": "all"}), ("unlearning", {})]:
        top = _planted_first(folder, signals, gens, method, params, tmp_path / method)
        assert top.to_dict() == want, (method, params)


def test_a_generation_the_adapter_refuses_is_rejected_with_its_rule(conv_version, tmp_path):
    folder, signals = conv_version
    bad = np.full((4, 32), np.nan, dtype=np.float32)
    shares, rejected = attribute_generations(
        folder,
        [("ok", signals[0]), ("nan", bad), ("short", signals[1][:, :8])],
        tmp_path,
        train_items=signals,
    )
    assert rejected.set_index("generation_id")["reason"].to_dict() == {
        "nan": "a signal is a finite (4, 32) array",
        "short": "a signal is a finite (4, 32) array",
    }
    assert set(shares.generation_id) == {"ok"}


def test_training_items_must_match_the_manifest(conv_version, tmp_path):
    folder, signals = conv_version
    changed = [s.copy() for s in signals]
    changed[4][0, 0] += 1e-3
    with pytest.raises(ValueError, match=r"training example 4 \(work s04\) does not match"):
        attribute_generations(folder, [("g", signals[0])], tmp_path, train_items=changed)


# -- cache keys -----------------------------------------------------------------------------


def test_float_catalogs_that_differ_only_in_values_get_different_keys_and_fresh_features(
    conv_version, tmp_path
):
    """The old key hashed inputs as int32: x and x / 2 (values in (-1, 1), integer part 0 for
    both) collided, and the second catalog was served the first one's features. Keys now hash
    bytes, dtype and shape."""
    folder, signals = conv_version
    adapter = load_adapter(folder)
    a = [adapter.prepare(s) for s in signals]
    b = [adapter.prepare(s / 2) for s in signals]

    def int32_key(xs):  # the engine's first cache key
        h = hashlib.sha256()
        for t in xs:
            h.update(np.asarray(t, dtype="<i4").tobytes())
            h.update(b"|")
        return h.hexdigest()

    assert int32_key(a) == int32_key(b)  # the collision this test guards against
    assert examples_digest(a) != examples_digest(b)
    # same values, other dtype or shape: other keys too
    assert examples_digest(a) != examples_digest([x.double() for x in a])
    assert examples_digest(a) != examples_digest([x.reshape(8, 16) for x in a])
    assert examples_digest([[1, 2]]) != examples_digest([[1.0, 2.0]])

    first = TRAKAttributor(adapter, cache_dir=tmp_path)
    first.cache(a)
    second = TRAKAttributor(adapter, cache_dir=tmp_path)
    second.cache(b)
    assert (first.cache_hits, second.cache_hits) == (0, 0)  # b's features were computed
    target = [adapter.prepare(signals[3] / 2)]
    fresh = TRAKAttributor(adapter)  # no cache at all
    fresh.cache(b)
    np.testing.assert_allclose(second.attribute(target), fresh.attribute(target), rtol=1e-5)
    assert not np.allclose(first.attribute(target), second.attribute(target), rtol=1e-3)
    again = TRAKAttributor(adapter, cache_dir=tmp_path)
    again.cache(a)
    assert again.cache_hits == len(adapter.checkpoints())  # a's own features, reused


# -- every layer kind equals its materialised per-example gradient ---------------------------


class Zoo(nn.Module):
    """One of each layer kind the engine featurises, in one forward."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(11, 6, padding_idx=0)
        self.conv1 = nn.Conv1d(6, 5, 3, stride=2, dilation=2, padding=3, padding_mode="reflect")
        self.conv_same = nn.Conv1d(5, 5, 4, padding="same")
        self.conv2 = nn.Conv2d(1, 3, (2, 3), stride=(1, 2), padding=(1, 0), bias=False)
        self.attn = nn.MultiheadAttention(6, 2, batch_first=True)
        self.norm = nn.GroupNorm(1, 3)
        self.head = nn.Linear(9, 4)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.emb(idx)  # (B, T, 6)
        a, _ = self.attn(h, h, h, need_weights=False)
        c = self.conv_same(torch.relu(self.conv1((h + a).transpose(1, 2))))  # (B, 5, L)
        img = self.norm(self.conv2(c.unsqueeze(1)))  # (B, 3, H, W)
        pooled = torch.cat([img.mean((2, 3)), c.mean(2), a.mean((1, 2))[:, None]], 1)
        return self.head(pooled)  # (B, 4)


class ZooAdapter:
    name, version, model_version = "zoo", "1", "zoo-v1"

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = Zoo().eval()

    def prepare(self, raw):
        return raw

    def content_sha256(self, raw) -> str:
        return examples_digest([raw])

    def per_example_loss(self, batch):
        idx = torch.tensor(batch)
        return (self.model(idx) ** 2).sum(1) + idx.shape[1] * 0.0

    def attributed_modules(self):
        m = self.model
        return [m.emb, m.attn, m.conv1, m.conv_same, m.conv2, m.norm, m.head]

    def checkpoints(self):
        return ["only"]

    def load_checkpoint(self, name):
        pass


@pytest.mark.parametrize("exact_up_to", [0, 10**6])
def test_every_layer_kind_equals_the_projected_materialised_gradient(exact_up_to):
    """Hooked layers (embedding with a padding row, strided/dilated/reflect-padded and 'same'
    Conv1d, Conv2d without bias, Linear) and parameter blocks (attention's in_proj and
    out_proj, GroupNorm) give P_out G P_in^T of each example's own autograd gradient G, or G
    itself when kept exact."""
    adapter = ZooAdapter()
    att = TRAKAttributor(adapter, layers="all", k_in=3, k_out=2, seed=4, exact_up_to=exact_up_to)
    batch = [[1, 4, 0, 7, 3, 9, 2, 0, 5, 6, 1, 8], [2, 2, 5, 10, 0, 1, 3, 4, 7, 7, 6, 9]]
    phi = att.features(batch)
    proj = att.projections("only")
    expected = []
    for one in batch:
        adapter.model.zero_grad()
        adapter.per_example_loss([one]).sum().backward()
        row = []
        for layer, pr in zip(att.modules(), proj, strict=True):
            m = layer.module
            if layer.kind == "params":
                g = layer.matrix([p.grad for p in layer.params])
            elif layer.kind == "embedding":
                g = m.weight.grad.T  # (dim, num): sum_t b_t onehot_t^T
            else:
                g = m.weight.grad.reshape(m.weight.shape[0], -1)
                if m.bias is not None:
                    g = torch.cat([g, m.bias.grad[:, None]], 1)
            row.append((g if pr is None else pr[1] @ g @ pr[0].T).reshape(-1))
        expected.append(torch.cat(row))
    kinds = [layer.kind for layer in att.modules()]
    assert kinds == ["embedding", "params", "params", "conv", "conv", "conv", "params", "linear"]
    torch.testing.assert_close(phi, torch.stack(expected), rtol=1e-4, atol=1e-6)
