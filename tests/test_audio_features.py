"""The audio model's inputs: normalised log-mel spectrograms, Griffin-Lim back, content hashes."""

from __future__ import annotations

import numpy as np
import pytest

from sandbox.audio_features import (
    FeatureSettings,
    fit_length,
    input_sha256,
    log_mel,
    mel_to_audio,
)

S = FeatureSettings()


def _melody(pitches: list[int], seed: int = 0) -> np.ndarray:
    """Harmonic tones, one per half second: a stand-in for a rendered line, no synth needed."""
    rng = np.random.default_rng(seed)
    t = np.arange(S.sample_rate // 2) / S.sample_rate
    notes = []
    for p in pitches:
        f0 = 440.0 * 2 ** ((p - 69) / 12)
        tone = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6))
        notes.append(tone * np.exp(-3 * t))
    return fit_length(np.concatenate(notes), S.n_samples)


A = _melody([60, 62, 64, 65, 67, 69, 71, 72])
B = _melody([55, 55, 67, 67, 64, 64, 60, 48], seed=1)


def test_log_mel_has_a_fixed_shape_and_range_whatever_the_length():
    for audio in (A, A[: S.n_samples // 3], np.concatenate([A, A])):
        x = log_mel(audio)
        assert x.shape == (S.n_mels, S.frames) and x.dtype == np.float32
        assert -1.0 <= x.min() and x.max() == pytest.approx(1.0)  # the peak is 0 dB
    assert (log_mel(np.zeros(S.n_samples)) == -1.0).all()  # silence is the floor


def test_levels_are_relative_to_the_excerpt():
    np.testing.assert_allclose(log_mel(A), log_mel(0.1 * A), atol=1e-4)


def test_griffin_lim_round_trip_keeps_the_excerpt_recognisable_and_is_deterministic():
    xa, xb = log_mel(A), log_mel(B)
    ya = mel_to_audio(xa)
    assert ya.shape == (S.n_samples,) and np.abs(ya).max() == pytest.approx(0.891, abs=1e-3)
    assert np.array_equal(ya, mel_to_audio(xa))  # fixed phase seed: same samples every time
    back = log_mel(ya)

    def corr(p, q):
        return float(np.corrcoef(p.ravel(), q.ravel())[0, 1])

    assert corr(back, xa) > 0.6
    assert corr(back, xa) > corr(back, xb) + 0.15  # closer to its own source than to another


def test_input_hash_covers_values_dtype_and_shape():
    x = log_mel(A)
    h = input_sha256(x)
    assert h == input_sha256(x.copy()) == input_sha256(x.astype(">f4"))  # byte order normalised
    y = x.copy()
    y[0, 0] = np.nextafter(y[0, 0], np.float32(2))  # one float, one ulp apart
    assert input_sha256(y) != h
    assert input_sha256(x.reshape(S.frames, S.n_mels)) != h  # same bytes, other shape
    assert input_sha256(x.view(np.int32)) != h  # same bytes, other dtype
    assert input_sha256(x.astype(np.float64)) != h
