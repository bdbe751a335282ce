"""The sandbox transformer and its training: learns, generates within bounds, reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from sandbox.model import EOS_ID, GPT, PAD_ID, GPTConfig
from sandbox.tokenizer import Tokenizer
from sandbox.train import (
    TINY_CONFIG,
    TRAIN_TOKENS_FILE,
    load_model_version,
    pad_batch,
    synthetic_pieces,
    token_sha256,
    train_model_version,
)

TOK = Tokenizer()
CFG = GPTConfig(vocab_size=TOK.vocab_size, block_size=TOK.max_len, **TINY_CONFIG)
TRAIN = {"steps": 120, "batch_size": 16, "lr": 3e-3, "n_checkpoints": 3}


# Tiny models: one intra-op thread for the whole module (conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus() -> tuple[list[list[int]], list[str]]:
    pieces = synthetic_pieces(40, seed=11)
    return pieces, [f"work-{i:03d}" for i in range(len(pieces))]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus) -> Path:
    pieces, ids = corpus
    return train_model_version(pieces, ids, tmp_path_factory.mktemp("models"), CFG, seed=0, **TRAIN)


def _mean_loss(model: GPT, pieces: list[list[int]]) -> float:
    with torch.no_grad():
        return float(model.per_example_loss(pad_batch(pieces)).mean())


def test_training_lowers_loss_well_below_uniform(trained, corpus):
    pieces, _ = corpus
    torch.manual_seed(0)
    before = _mean_loss(GPT(CFG).eval(), pieces)
    after = _mean_loss(load_model_version(trained).load_model(), pieces)
    uniform = torch.log(torch.tensor(float(TOK.vocab_size))).item()
    assert before == pytest.approx(uniform, abs=0.2)
    assert after < 0.6 * uniform


def test_model_version_folder_layout(trained, corpus):
    pieces, ids = corpus
    mv = load_model_version(trained)
    info = json.loads((trained / "model_version.json").read_text())
    assert trained.name == info["model_version"] == "sbx-gpt-" + info["model_sha256"][:12]
    assert info["checkpoints"] == ["ckpt-40.pt", "ckpt-80.pt", "ckpt-120.pt"]
    assert all((trained / "checkpoints" / c).exists() for c in info["checkpoints"])
    assert Tokenizer.from_json((trained / "tokenizer.json").read_text()) == TOK
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["model"]["n_embd"] == CFG.n_embd and cfg["train"]["steps"] == TRAIN["steps"]
    m = mv.manifest
    assert list(m.columns) == ["example_index", "work_id", "token_sha256", "n_tokens"]
    assert str(m["example_index"].dtype) == "int64" and str(m["n_tokens"].dtype) == "int32"
    assert m["work_id"].tolist() == ids
    assert m["token_sha256"].tolist() == [token_sha256(p) for p in pieces]
    assert m["n_tokens"].tolist() == [len(p) for p in pieces]
    stored = pd.read_parquet(trained / TRAIN_TOKENS_FILE)
    assert [list(t) for t in stored["tokens"]] == pieces
    assert not mv.load_model("ckpt-40.pt").training


def test_same_seed_same_model_sha(tmp_path, corpus, trained):
    pieces, ids = corpus
    again = train_model_version(pieces, ids, tmp_path / "a", CFG, seed=0, **TRAIN)
    other = train_model_version(pieces, ids, tmp_path / "b", CFG, seed=1, **TRAIN)
    first = json.loads((trained / "model_version.json").read_text())
    second = json.loads((again / "model_version.json").read_text())
    assert second["model_sha256"] == first["model_sha256"]
    assert second["manifest_sha256"] == first["manifest_sha256"]
    assert again.name == trained.name
    assert (
        json.loads((other / "model_version.json").read_text())["model_sha256"]
        != (first["model_sha256"])
    )


def test_generate_stops_rows_at_eos_and_respects_max_len(trained):
    model = load_model_version(trained).load_model()
    prompt = torch.tensor([[TOK.bos, TOK.style_id(s)] for s in ("bach", "essen", "mozart")] * 2)
    g = torch.Generator().manual_seed(0)
    out = model.generate(prompt, max_new_tokens=200, temperature=1.0, top_k=20, generator=g)
    assert out.shape[0] == 6 and out.shape[1] <= 2 + 200
    assert torch.equal(out[:, :2], prompt)
    for row in out.tolist():
        if EOS_ID in row:
            after = row[row.index(EOS_ID) + 1 :]
            assert all(t == PAD_ID for t in after)
        assert PAD_ID not in row[: row.index(EOS_ID)] if EOS_ID in row else PAD_ID not in row
    # The trained model ends its pieces well before 200 tokens.
    assert all(EOS_ID in row for row in out.tolist())

    short = model.generate(prompt, max_new_tokens=5, generator=g)
    assert short.shape[1] <= 2 + 5

    # Generation never grows past the context window.
    long_prompt = torch.ones(1, CFG.block_size - 3, dtype=torch.long)
    assert model.generate(long_prompt, max_new_tokens=50, temperature=0).shape[1] <= (
        CFG.block_size
    )


def test_generate_row_that_ended_stays_padded():
    torch.manual_seed(0)
    model = GPT(CFG).eval()
    prompt = torch.tensor([[TOK.bos, TOK.style_id("bach"), EOS_ID], [TOK.bos, 5, 40]])
    out = model.generate(prompt, max_new_tokens=4, temperature=0)
    assert out[0, 3:].tolist() == [PAD_ID] * (out.shape[1] - 3)
    assert out.shape[1] == 3 + 4 or EOS_ID in out[1].tolist()


def test_per_example_loss_ignores_padding(trained, corpus):
    pieces, _ = corpus
    model = load_model_version(trained).load_model()
    alone = model.per_example_loss(pad_batch([pieces[0]]))
    padded = model.per_example_loss(pad_batch([pieces[0], max(pieces, key=len)]))
    assert torch.allclose(alone[0], padded[0], atol=1e-5)
