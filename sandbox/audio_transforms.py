"""Transformations of an audio model input (a normalised log-mel, sandbox/audio_features.py):
what robust matching undoes when a generation may be a pitch-shifted, time-stretched or noisy
copy of a training work (AudioDiffusionAdapter.variants).

Why on the log-mel and not on the waveform with librosa.effects (which makes the platform's
planted copies, sandbox/audio_platform.apply_transform): an example is the log-mel, and going
back to a waveform is a Griffin-Lim round trip that changes the log-mel more (correlation
~0.8 with the original) than the transformations it would undo. On a log-mel the
transformations are resamplings of an axis:

* a pitch shift by s semitones scales every frequency by 2^(s/12): the mel axis is resampled at
  librosa's own mel centre frequencies (librosa.mel_frequencies, the filters' peaks) scaled by
  2^(-s/12), by linear interpolation between bands;
* a time stretch at rate r (librosa.effects.time_stretch: r > 1 is faster, the excerpt starts
  at the same instant) is out(t) = x(r t): the frame axis resampled the same way; frames past
  the end are silence (the floor, -1);
* white noise fills the quiet bands with a floor that is steady in time: a spectral gate
  subtracts each band's steady floor (a low quantile over frames) in the power domain, as
  spectral subtraction does. noisereduce implements a spectral gate for waveforms only, hence
  these few lines on the example itself.

Each result is renormalised like log_mel does (its loudest bin at 0 dB, i.e. 1.0) and clipped
to [-1, 1], so a variant is an input the model could have been given.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sandbox.audio_features import INPUT_DTYPE, FeatureSettings

# What a copy may have done (issue 16: pitch +-2 semitones, tempo +-10 %, noise at 20 dB SNR),
# and so what variants() undoes: every semitone up to 2, tempo in 5 % steps up to 10 %.
SEMITONES = (-2, -1, 1, 2)
RATES = (0.9, 0.95, 1.05, 1.1)
# The spectral gate: a band's steady floor is this quantile of its power over frames, and this
# multiple of it is subtracted (over-subtraction, as spectral subtraction usually does, so the
# floor's own fluctuations go too).
GATE_QUANTILE, GATE_FACTOR = 0.2, 2.0


def _to_db(x: np.ndarray, s: FeatureSettings) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) - 1.0) * (s.top_db / 2)


def _from_db(db: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """Back to the model's scale, renormalised: loudest bin 0 dB, floor -top_db (a bin at the
    floor stays there: it was silence, not a level)."""
    db = np.where(db <= -s.top_db, -s.top_db, db - db.max())
    return np.clip(db / (s.top_db / 2) + 1.0, -1.0, 1.0).astype(INPUT_DTYPE)


@lru_cache(maxsize=8)
def _mel_axis(sr: int, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """(centre frequency of each mel band in Hz, its mel), as librosa.filters.mel places them."""
    import librosa

    hz = librosa.mel_frequencies(n_mels=n_mels + 2, fmin=0.0, fmax=sr / 2.0)[1:-1]
    return hz, librosa.hz_to_mel(hz)


def _resample(x: np.ndarray, pos: np.ndarray, axis: int) -> np.ndarray:
    """x read at fractional positions `pos` along `axis` (linear interpolation); positions
    past the last index are the floor (-1), before the first the first value."""
    n = x.shape[axis]
    lo = np.clip(np.floor(pos).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    w = np.clip(pos - lo, 0.0, 1.0)
    a, b = np.take(x, lo, axis=axis), np.take(x, hi, axis=axis)
    shape = [1, 1]
    shape[axis] = -1
    out = a + (b - a) * w.reshape(shape)
    return np.where((pos > n - 1).reshape(shape), -1.0, out)


def shift_pitch(x: np.ndarray, semitones: float, settings: FeatureSettings) -> np.ndarray:
    """The log-mel of the same audio pitch-shifted by `semitones` (content moves up for > 0)."""
    hz, mel = _mel_axis(settings.sample_rate, settings.n_mels)
    import librosa

    source_mel = librosa.hz_to_mel(hz * 2.0 ** (-semitones / 12.0))
    pos = np.interp(source_mel, mel, np.arange(len(mel)), left=0.0, right=float(len(mel)))
    out = _resample(np.asarray(x, dtype=np.float64), pos, axis=0)
    return _from_db(_to_db(out, settings), settings)


def stretch_time(x: np.ndarray, rate: float, settings: FeatureSettings) -> np.ndarray:
    """The log-mel of the same audio played `rate` times as fast (librosa's time_stretch rate),
    from the same first instant; frames past the end of x are silence."""
    pos = np.arange(x.shape[1], dtype=np.float64) * rate
    out = _resample(np.asarray(x, dtype=np.float64), pos, axis=1)
    return _from_db(_to_db(out, settings), settings)


def denoise(x: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """A spectral gate: each band's steady floor (GATE_QUANTILE of its power over frames,
    times GATE_FACTOR) subtracted in the power domain; what falls below goes to the floor."""
    power = 10.0 ** (_to_db(x, settings) / 10.0)
    floor = GATE_FACTOR * np.quantile(power, GATE_QUANTILE, axis=1, keepdims=True)
    tiny = 10.0 ** (-settings.top_db / 10.0)
    return _from_db(10.0 * np.log10(np.maximum(power - floor, tiny * power.max())), settings)


def variants(x: np.ndarray, settings: FeatureSettings) -> list[np.ndarray]:
    """The example itself first, then each pitch shift undone (SEMITONES), each time stretch
    undone (RATES) and the noise gated: 1 + 4 + 4 + 1 = 10 versions."""
    x = np.asarray(x, dtype=INPUT_DTYPE)
    out = [x]
    out += [shift_pitch(x, -s, settings) for s in SEMITONES]
    out += [stretch_time(x, 1.0 / r, settings) for r in RATES]
    out.append(denoise(x, settings))
    return out


def catalog_versions(x: np.ndarray, settings: FeatureSettings) -> list[np.ndarray]:
    """What a copy of this catalog work may look like: pitch-shifted by each of SEMITONES,
    time-stretched at each of RATES, and gated like a noisy copy's denoised variant (4 + 4 + 1
    = 9 versions, without the work itself); the forward direction of ``variants``, the catalog
    side of robust matching (AudioDiffusionAdapter.catalog_versions, attribution/versions.py).
    Noise itself has no forward version (it is never the same twice): the gate is applied to
    both sides instead, so a noisy copy's denoised variant meets its work gated the same way.
    Measured with ``variants: 10`` (docs/BENCHMARKS.md): without the gated version copies at
    20 dB SNR were found 0.83 of the time through the catalog side, with it 1.00."""
    x = np.asarray(x, dtype=INPUT_DTYPE)
    out = [shift_pitch(x, s, settings).astype(INPUT_DTYPE) for s in SEMITONES]
    out += [stretch_time(x, r, settings).astype(INPUT_DTYPE) for r in RATES]
    out.append(denoise(x, settings).astype(INPUT_DTYPE))
    return out
