"""Musical transformations of a symbolic piece (token ids of sandbox/tokenizer.py): what a
platform's output may do to a training work it copies (transpose it, play it faster or
slower), and what robust matching undoes (SandboxGPTAdapter.variants).

Tempo in this vocabulary is not a token: a piece is written in quarter lengths. A tempo
change of factor f is what a transcription at the original tempo gives: every duration
multiplied by f and snapped to the nearest duration of the vocabulary (so it is lossy, and
undoing it with 1/f restores most, not all, durations).
"""

from __future__ import annotations

from sandbox.tokenizer import Tokenizer

TRANSPOSITIONS = tuple(s for s in range(-6, 7) if s != 0)  # +-1..6 semitones
# +-20 % tempo as duration factors (a copy played 20 % faster or slower), and the factors
# that undo them (robust matching's variants)
TEMPO_CHANGES = (0.8, 1.2)
UNDO_TEMPO = tuple(1.0 / f for f in TEMPO_CHANGES)


def _map_tokens(ids: list[int], prefix: str, new_token, tok: Tokenizer | None) -> list[int]:
    """Every token starting with `prefix` replaced by new_token(its value, tok)."""
    tok = tok or Tokenizer()
    ix, vocab = tok.index, tok.vocab
    return [
        ix[new_token(vocab[i][len(prefix) : -1], tok)] if vocab[i].startswith(prefix) else i
        for i in ids
    ]


def transpose(ids: list[int], semitones: int, tok: Tokenizer | None = None) -> list[int]:
    """Every pitch moved by `semitones`, folded by octaves into the vocabulary's range."""
    return _map_tokens(
        ids, "<p:", lambda v, t: f"<p:{t.fold_pitch(int(v) + semitones)}>", tok
    )


def change_tempo(ids: list[int], factor: float, tok: Tokenizer | None = None) -> list[int]:
    """Every duration multiplied by `factor` and snapped to the vocabulary's nearest one."""
    return _map_tokens(
        ids, "<d:", lambda v, t: f"<d:{t.nearest_duration(float(v) * factor):g}>", tok
    )


def _versions(ids: list[int], tempo_factors, tok: Tokenizer, seen: set) -> list[list[int]]:
    """Each tempo factor x each transposition 0, +-1..6 of the piece, in that order, less what
    is already in `seen` (which it extends)."""
    out = []
    for factor in tempo_factors:
        base = ids if factor == 1.0 else change_tempo(ids, factor, tok)
        for s in (0, *TRANSPOSITIONS):
            v = base if s == 0 else transpose(base, s, tok)
            key = tuple(v)
            if key not in seen:
                seen.add(key)
                out.append(v)
    return out


def variants(ids: list[int], tok: Tokenizer | None = None) -> list[list[int]]:
    """The piece itself first, then each transposition +-1..6 and each tempo change undone,
    alone and combined (13 x 3 - 1 = 38 others), without duplicates."""
    return _versions(ids, (1.0, *UNDO_TEMPO), tok or Tokenizer(), set())


def transformed_versions(ids: list[int], tok: Tokenizer | None = None) -> list[list[int]]:
    """What a copy of this piece may look like: each transposition +-1..6 and each tempo
    change +-20 %, alone and combined (13 x 3 - 1 = 38 others), without the piece itself or
    duplicates. The forward direction of ``variants``: robust matching's catalog side
    (SandboxGPTAdapter.catalog_versions) matches a transformed copy against these."""
    return _versions(ids, (1.0, *TEMPO_CHANGES), tok or Tokenizer(), {tuple(ids)})
