"""Symbolic tokenisation of a melodic line: style token, then pitch/duration/rest/bar events.

The vocabulary is fixed in code, not learned from the corpus, so a token id means the same
thing for every model version and a platform's output can be checked against it without
the training data. A piece is

    <bos> <style:NAME> ( <p:MIDI> <d:QL> | <rest> <d:QL> | <bar> )* <eos>
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# Collections of the music21 corpus that the sandbox platform is licensed on. The order is
# part of the vocabulary: append, never reorder.
STYLES: tuple[str, ...] = (
    "bach",
    "palestrina",
    "monteverdi",
    "essen",
    "oneills",
    "ryansmammoth",
    "beethoven",
    "mozart",
    "haydn",
    "schumann",
    "trecento",
    "josquin",
    "ciconia",
    "handel",
    "weber",
    "other",
)
PITCH_LOW, PITCH_HIGH = 36, 96  # C2..C7; pitches outside are folded by octaves
DURATIONS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
SPECIALS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<bar>", "<rest>")


class TokenizerError(ValueError):
    """A token sequence that is not a well-formed piece under this vocabulary."""


def _vocab() -> list[str]:
    return (
        list(SPECIALS)
        + [f"<style:{s}>" for s in STYLES]
        + [f"<p:{m}>" for m in range(PITCH_LOW, PITCH_HIGH + 1)]
        + [f"<d:{d:g}>" for d in DURATIONS]
    )


@dataclass(frozen=True)
class Tokenizer:
    max_len: int = 256
    vocab: tuple[str, ...] = field(default_factory=lambda: tuple(_vocab()))

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.vocab)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def pad(self) -> int:
        return 0

    @property
    def bos(self) -> int:
        return 1

    @property
    def eos(self) -> int:
        return 2

    def style_id(self, style: str) -> int:
        if style not in STYLES:
            raise TokenizerError(f"unknown style {style!r}; known: {', '.join(STYLES)}")
        return self.index[f"<style:{style}>"]

    @staticmethod
    def fold_pitch(midi: int) -> int:
        while midi < PITCH_LOW:
            midi += 12
        while midi > PITCH_HIGH:
            midi -= 12
        return midi

    @staticmethod
    def nearest_duration(quarter_length: float) -> float:
        return min(DURATIONS, key=lambda d: (abs(d - quarter_length), d))

    def encode(self, events: list[tuple], style: str) -> list[int]:
        """events: ("note", midi, quarterLength) | ("rest", quarterLength) | ("bar",)."""
        ix = self.index
        ids = [self.bos, self.style_id(style)]
        for ev in events:
            if ev[0] == "note":
                step = [ix[f"<p:{self.fold_pitch(int(ev[1]))}>"], self._dur(ev[2])]
            elif ev[0] == "rest":
                step = [ix["<rest>"], self._dur(ev[1])]
            elif ev[0] == "bar":
                step = [ix["<bar>"]]
            else:
                raise TokenizerError(f"unknown event kind {ev[0]!r}")
            if len(ids) + len(step) > self.max_len - 1:
                break
            ids.extend(step)
        ids.append(self.eos)
        return ids

    def _dur(self, quarter_length: float) -> int:
        return self.index[f"<d:{self.nearest_duration(float(quarter_length)):g}>"]

    def decode(self, ids: list[int]) -> list[str]:
        return [self.vocab[i] for i in ids]

    def validate(self, ids: list[int]) -> None:
        """Raise TokenizerError naming the first rule a platform's output breaks."""
        if not ids:
            raise TokenizerError("empty token sequence")
        if len(ids) > self.max_len:
            raise TokenizerError(f"{len(ids)} tokens exceed max_len {self.max_len}")
        bad = [i for i in ids if not isinstance(i, int) or i < 0 or i >= self.vocab_size]
        if bad:
            raise TokenizerError(f"token id {bad[0]!r} outside vocabulary of {self.vocab_size}")
        if ids[0] != self.bos:
            raise TokenizerError("sequence must start with <bos>")
        if len(ids) < 2 or not self.vocab[ids[1]].startswith("<style:"):
            raise TokenizerError("second token must be a <style:...> token")

    def to_json(self) -> str:
        return json.dumps({"max_len": self.max_len, "vocab": list(self.vocab)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        spec = json.loads(text)
        return cls(max_len=int(spec["max_len"]), vocab=tuple(spec["vocab"]))
