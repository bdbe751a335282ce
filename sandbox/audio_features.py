"""What the audio model sees: a normalised log-mel spectrogram of a fixed-length excerpt.

    audio (n_samples,) --librosa mel power--> dB relative to the excerpt's peak, clipped to
    [-top_db, 0] --> scaled linearly to [-1, 1] --> float32 (n_mels, frames)

and back by Griffin-Lim (``librosa.griffinlim``) with a fixed phase seed,
so a generation renders to the same samples every time. Levels are relative to each
excerpt's own peak: loudness never tells two works apart, only their spectra do.

``input_sha256`` is the content hash of one model input: its dtype, shape and bytes. Two
inputs that differ in any float value, or only in dtype or shape, get different hashes.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

INPUT_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class FeatureSettings:
    sample_rate: int = 16_000
    n_samples: int = 64_000  # 4 s: the catalog excerpt (sandbox.audio_render.RenderSettings)
    n_fft: int = 1024
    hop_length: int = 500  # 31 ms: librosa's centred frames give 129; the last is dropped
    n_mels: int = 64
    frames: int = 128
    top_db: float = 80.0
    griffin_lim_iters: int = 32
    griffin_lim_seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_mels, self.frames)


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad to n samples (a time-stretched copy is longer or shorter)."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))


def load_audio(path: Path, settings: FeatureSettings | None = None) -> np.ndarray:
    """Mono float32 samples of an audio file at the feature sample rate, of n_samples."""
    import librosa
    import soundfile as sf

    s = settings or FeatureSettings()
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if sr != s.sample_rate:
        mono = librosa.resample(mono, orig_sr=sr, target_sr=s.sample_rate, res_type="soxr_hq")
    return fit_length(mono, s.n_samples)


def log_mel(audio: np.ndarray, settings: FeatureSettings | None = None) -> np.ndarray:
    """Normalised log-mel spectrogram (n_mels, frames), float32 in [-1, 1]."""
    import librosa

    s = settings or FeatureSettings()
    y = fit_length(audio, s.n_samples)
    mel = librosa.feature.melspectrogram(
        y=y, sr=s.sample_rate, n_fft=s.n_fft, hop_length=s.hop_length, n_mels=s.n_mels, power=2.0
    )
    if float(mel.max()) <= 0:  # silence: the floor everywhere
        return np.full(s.shape, -1.0, dtype=INPUT_DTYPE)
    db = librosa.power_to_db(mel, ref=np.max, top_db=s.top_db)  # in [-top_db, 0]
    x = db / (s.top_db / 2) + 1.0
    x = x[:, : s.frames]
    if x.shape[1] < s.frames:
        x = np.pad(x, ((0, 0), (0, s.frames - x.shape[1])), constant_values=-1.0)
    return np.clip(x, -1.0, 1.0).astype(INPUT_DTYPE)


def mel_to_audio(x: np.ndarray, settings: FeatureSettings | None = None) -> np.ndarray:
    """Audio (n_samples,) float32 peak-normalised to 0.891 from a normalised log-mel, by
    Griffin-Lim with a fixed seed: the same input always gives the same samples."""
    import librosa

    s = settings or FeatureSettings()
    x = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    db = (x - 1.0) * (s.top_db / 2)
    power = librosa.db_to_power(db)
    # librosa.feature.inverse.mel_to_audio in two steps: its random_state cannot reach
    # griffinlim, and its mel_to_stft solves a non-negative least-squares problem (0.45 s of
    # the 0.6 s per excerpt) where the clipped pseudo-inverse of the mel basis gives the same
    # round trip here (log-mel correlation 0.77 either way, measured on catalog excerpts).
    magnitude = np.sqrt(np.maximum(_mel_pinv(s.sample_rate, s.n_fft, s.n_mels) @ power, 0.0))
    # The features drop librosa's last centred frame; Griffin-Lim needs it back to match
    # n_samples, and repeating the frame before is the least audible guess.
    n_stft = 1 + s.n_samples // s.hop_length
    magnitude = np.pad(magnitude, ((0, 0), (0, max(0, n_stft - magnitude.shape[1]))), mode="edge")
    y = librosa.griffinlim(
        magnitude,
        n_iter=s.griffin_lim_iters,
        hop_length=s.hop_length,
        n_fft=s.n_fft,
        length=s.n_samples,
        random_state=s.griffin_lim_seed,
    )
    y = fit_length(y, s.n_samples)
    peak = float(np.abs(y).max())
    return (y / peak * 0.891).astype(np.float32) if peak > 0 else y


@lru_cache(maxsize=4)
def _mel_pinv(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    return np.linalg.pinv(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels))


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    return np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")


def input_sha256(x: np.ndarray) -> str:
    """Content hash of one model input, over its dtype, shape and bytes (C order).

    The header keeps a float32 (64, 128) input and the same bytes read as another dtype or
    shape apart; little-endian bytes keep the hash the same on any machine.
    """
    arr = np.asarray(x)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}|{','.join(map(str, arr.shape))}|".encode())
    h.update(arr.tobytes(order="C"))
    return h.hexdigest()
