"""Content fingerprints a provenance check matches on.

Audio: a landmark ("constellation") fingerprint in the manner of Wang's Shazam paper (2003):
spectrogram peaks, paired into (f1, f2, dt) hashes anchored at a time t1. A copy that was
re-encoded, resampled, cut at the start or made louder keeps most of its strongest peaks and
their relative positions, so a true match is many hashes agreeing on one time offset.

Why our own and not Chromaprint (pyacoustid + libchromaprint): Chromaprint compares whole
fingerprints from the start of the file; a copy with its first 10 % cut needs an offset search
that AcoustID does on its server, not in the library, and its sub-fingerprints are computed over
~12 s windows, longer than the sandbox's 4 s generations. The landmark scheme handles cut starts
by design (offset voting), needs nothing beyond librosa/scipy/soundfile we already ship, and
its hashes index in DuckDB as plain integers.

MIDI: the melody's intervals (the highest note of each onset, successive differences in
semitones) hashed in overlapping n-grams: transposing a piece changes no interval; tempo
changes no interval either. A match is the share of the query's n-grams found in one
generation.
"""

from __future__ import annotations

import hashlib
import io
import itertools
from dataclasses import dataclass

import numpy as np

SR = 8000  # analysis rate: what survives a copy resampled down to telephone quality
N_FFT, HOP = 512, 128  # 64 ms windows, 16 ms hops
PEAK_FREQ, PEAK_TIME = 15, 11  # neighbourhood a peak must dominate (bins, frames)
FLOOR_DB = 55.0  # peaks quieter than the file's loudest minus this are noise: relative, so gain-proof
FAN_OUT, MAX_DT, MAX_DF = 6, 48, 96
MIN_SECONDS, MAX_SECONDS = 0.5, 900.0
MIDI_NGRAM = 6


class FingerprintError(ValueError):
    """The input is not something we can fingerprint (not audio, too short, too long)."""


@dataclass(frozen=True)
class AudioPrint:
    hashes: np.ndarray  # int64, one per landmark
    times: np.ndarray  # int32 anchor frame of each
    seconds: float


def load_audio(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as err:  # noqa: BLE001 (soundfile raises LibsndfileError, RuntimeError, ...)
        raise FingerprintError(f"not a readable audio file (WAV, FLAC, OGG, AIFF...): {err}") from None
    if audio.size == 0:
        raise FingerprintError("the audio file holds no samples")
    seconds = len(audio) / sr
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise FingerprintError(f"audio must last {MIN_SECONDS}-{MAX_SECONDS:g} s, this one lasts {seconds:.2f} s")
    mono = audio.mean(axis=1)
    if not np.isfinite(mono).all():
        raise FingerprintError("the audio file holds samples that are not numbers")
    return mono, sr


def audio_print(data: bytes) -> AudioPrint:
    import librosa
    from scipy.ndimage import maximum_filter

    mono, sr = load_audio(data)
    y = librosa.resample(mono, orig_sr=sr, target_sr=SR) if sr != SR else mono
    mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
    db = librosa.amplitude_to_db(mag, ref=np.max, top_db=None)  # relative to the loudest bin
    peaks = (db == maximum_filter(db, size=(PEAK_FREQ, PEAK_TIME))) & (db > -FLOOR_DB)
    f_idx, t_idx = np.nonzero(peaks)
    order = np.lexsort((f_idx, t_idx))
    f_idx, t_idx = f_idx[order], t_idx[order]
    hashes, times = [], []
    for i in range(len(t_idx)):
        n = 0
        for j in range(i + 1, len(t_idx)):
            dt = t_idx[j] - t_idx[i]
            if dt > MAX_DT:
                break
            if dt == 0 or abs(int(f_idx[j]) - int(f_idx[i])) > MAX_DF:
                continue
            hashes.append((int(f_idx[i]) << 16) | (int(f_idx[j]) << 7) | int(dt))
            times.append(int(t_idx[i]))
            n += 1
            if n == FAN_OUT:
                break
    return AudioPrint(np.asarray(hashes, dtype=np.int64), np.asarray(times, dtype=np.int32), len(y) / SR)


# --- MIDI --------------------------------------------------------------------------------


def midi_pitches(data: bytes) -> list[int]:
    """The melody of a MIDI file: the highest pitch sounding at each onset, in time order."""
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001 (mido and pretty_midi raise many kinds on a bad file)
        raise FingerprintError(f"not a readable MIDI file: {err}") from None
    onsets: dict[float, int] = {}
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        for note in inst.notes:
            t = round(note.start, 3)
            onsets[t] = max(onsets.get(t, 0), note.pitch)
    return [onsets[t] for t in sorted(onsets)]


def interval_ngrams(pitches: list[int], n: int = MIDI_NGRAM) -> list[str]:
    """Transposition-robust n-gram hashes of a pitch sequence (its successive intervals)."""
    steps = [b - a for a, b in itertools.pairwise(pitches)]
    grams = {",".join(map(str, steps[i:i + n])) for i in range(len(steps) - n + 1)}
    return sorted(hashlib.sha256(g.encode()).hexdigest()[:16] for g in grams)


def midi_print(data: bytes) -> list[str]:
    pitches = midi_pitches(data)
    if len(pitches) <= MIDI_NGRAM:
        raise FingerprintError(f"the MIDI file has {len(pitches)} note onsets; at least {MIDI_NGRAM + 1} are needed")
    return interval_ngrams(pitches)
