"""Catalog audio: real works through FluidSynth and the TimGM6mb soundfont, one GM instrument
per style, rendered deterministically and cached by render key."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pretty_midi
import pytest

from sandbox import corpus
from sandbox.audio_render import (
    STYLE_PROGRAM,
    RenderSettings,
    events_to_midi,
    read_pcm,
    render_catalog_audio,
    render_key,
    renderer_identity,
    synthesize,
    token_events,
)

N_WORKS = 10


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    corpus.build_catalog(home, limit=N_WORKS, workers=1)
    stats = render_catalog_audio(home, workers=2)
    return home, stats


def test_catalog_works_become_fixed_length_excerpts(rendered):
    home, stats = rendered
    audio = pd.read_parquet(home / "catalog" / "audio.parquet")
    tokens = pd.read_parquet(home / "catalog" / "tokens.parquet")
    assert not stats["failed"] and stats["works"] == len(audio)
    # every work is listed once, or named as the duplicate of a listed one
    assert len(audio) + len(stats["duplicates"]) == len(tokens)
    assert set(audio["work_id"]) | set(stats["duplicates"]) == set(tokens["work_id"])
    assert set(stats["duplicates"].values()) <= set(audio["work_id"])
    assert list(audio["work_id"]) == sorted(audio["work_id"])
    s = RenderSettings()
    for row in audio.itertuples():
        pcm, sr = read_pcm(home / "catalog" / "audio" / row.file_name)
        assert sr == row.sample_rate == s.sample_rate and len(pcm) == row.n_samples == s.n_samples
        assert row.file_name == f"{row.render_key}.flac"
        assert np.abs(pcm.astype(np.int32)).max() == round(0.891 * 32767)  # peak-normalised
        assert np.mean(pcm.astype(np.float64) ** 2) > 1e4  # sound, not silence
    assert audio["pcm_sha256"].nunique() == len(audio)


def test_each_style_is_played_by_its_own_general_midi_instrument(rendered):
    home, _ = rendered
    audio = pd.read_parquet(home / "catalog" / "audio.parquet")
    assert audio["style"].nunique() >= 3  # the small catalog draws from several collections
    for row in audio.itertuples():
        assert row.program == STYLE_PROGRAM[row.style]
        assert row.instrument == pretty_midi.program_to_instrument_name(row.program)
    assert len(set(STYLE_PROGRAM.values())) == len(STYLE_PROGRAM)  # no two styles share one
    # the MIDI handed to FluidSynth carries the program, and the timbre is audible in the result
    tokens = pd.read_parquet(home / "catalog" / "tokens.parquet").iloc[0]["tokens"]
    _, events = token_events(list(tokens))
    s = RenderSettings()
    organ, flute = (events_to_midi(events, p, s) for p in (19, 73))
    assert [i.program for i in organ.instruments] == [19]
    assert [n.pitch for n in organ.instruments[0].notes] == [
        n.pitch for n in flute.instruments[0].notes
    ]

    def brightness(pcm):  # spectral centroid in Hz
        spec = np.abs(np.fft.rfft(pcm.astype(np.float64)))
        freqs = np.fft.rfftfreq(len(pcm), 1 / s.sample_rate)
        return float((spec * freqs).sum() / spec.sum())

    a, b = synthesize(organ, s), synthesize(flute, s)
    assert not np.array_equal(a, b)
    assert abs(brightness(a) - brightness(b)) > 100


def test_rendering_is_deterministic_and_cached(rendered, tmp_path):
    home, _ = rendered
    first = pd.read_parquet(home / "catalog" / "audio.parquet")
    # a fresh home with the same catalog renders the same bytes
    (tmp_path / "catalog").mkdir()
    shutil.copy(home / "catalog" / "tokens.parquet", tmp_path / "catalog")
    again = render_catalog_audio(tmp_path, workers=1)
    assert again["rendered"] == again["works"] == len(first) and again["cached"] == 0
    second = pd.read_parquet(tmp_path / "catalog" / "audio.parquet")
    pd.testing.assert_frame_equal(first, second)
    for name in first["file_name"]:
        assert (home / "catalog/audio" / name).read_bytes() == (
            tmp_path / "catalog/audio" / name
        ).read_bytes()
    # a rerun renders nothing; a lost file is rendered again, to the same bytes
    lost = tmp_path / "catalog" / "audio" / first["file_name"].iloc[0]
    lost.unlink()
    rerun = render_catalog_audio(tmp_path, workers=1)
    assert rerun["rendered"] == 1 and rerun["cached"] == len(first) - 1
    assert lost.read_bytes() == (home / "catalog" / "audio" / lost.name).read_bytes()


def test_render_key_names_everything_that_decides_the_bytes():
    identity = renderer_identity()
    assert identity["fluidsynth"] and len(identity["soundfont_sha256"]) == 64
    s = RenderSettings()
    key = render_key("ab" * 32, "bach", s, identity)
    assert key == render_key("ab" * 32, "bach", s, identity)
    assert key != render_key("cd" * 32, "bach", s, identity)  # other score
    assert key != render_key("ab" * 32, "oneills", s, identity)  # other instrument
    assert key != render_key("ab" * 32, "bach", replace(s, seconds=2.0), identity)
    assert key != render_key("ab" * 32, "bach", s, dict(identity, soundfont_sha256="0" * 64))
    assert key != render_key("ab" * 32, "bach", s, dict(identity, fluidsynth="FluidSynth 9.9"))
