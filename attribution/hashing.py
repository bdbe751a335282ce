"""Content digests of model inputs for cache keys: bytes, dtype and shape of every example.

A cache key that hashed every input as int32 (the engine's first version) gave two float
catalogs that differ only in their values the same key, so one was served the other's
features. Here an example is hashed by what it is: for an array or tensor its dtype, its
shape and its bytes (C order, little-endian); a list of numbers is first made an array
(so [1, 2] and [1.0, 2.0] differ), and containers are hashed element by element with their
structure, so no two different examples can collide short of a sha256 collision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def _array_bytes(h, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and np.little_endian is False):
        a = a.astype(a.dtype.newbyteorder("<"))
    h.update(f"nd:{a.dtype.str}:{a.shape}:".encode())
    h.update(a.tobytes())


def update(h, x: Any) -> None:
    """Feed one example into hashlib object h."""
    if isinstance(x, np.ndarray):
        _array_bytes(h, x)
    elif type(x).__module__.startswith("torch") and hasattr(x, "detach"):
        t = x.detach().cpu().contiguous()
        # bfloat16 has no numpy dtype: hash its raw 16-bit words under the torch name.
        if str(t.dtype) == "torch.bfloat16":
            import torch

            h.update(f"t:{t.dtype}:{tuple(t.shape)}:".encode())
            h.update(t.view(torch.int16).numpy().tobytes())
        else:
            h.update(b"t:")
            _array_bytes(h, t.numpy())
    elif isinstance(x, bytes | bytearray):
        h.update(f"b:{len(x)}:".encode())
        h.update(bytes(x))
    elif isinstance(x, str):
        b = x.encode()
        h.update(f"s:{len(b)}:".encode())
        h.update(b)
    elif isinstance(x, Mapping):
        h.update(f"m:{len(x)}:".encode())
        for k in sorted(x, key=str):
            update(h, str(k))
            update(h, x[k])
    elif (
        isinstance(x, list | tuple) and x and all(isinstance(v, int | float | np.number) for v in x)
    ):
        _array_bytes(h, np.asarray(x))
    elif isinstance(x, list | tuple):
        h.update(f"l:{len(x)}:".encode())
        for v in x:
            update(h, v)
    elif isinstance(x, bool | int | float | np.number) or x is None:
        h.update(f"v:{type(x).__name__}:{x!r}:".encode())
    else:
        raise TypeError(f"cannot hash an example of type {type(x).__name__} for a cache key")


def examples_digest(examples: Iterable[Any], *spec: Any) -> str:
    """sha256 over every example (in order) and then the spec values (parameters, names)."""
    h = hashlib.sha256()
    n = 0
    for x in examples:
        update(h, x)
        h.update(b"|")
        n += 1
    h.update(f"n:{n}".encode())
    for s in spec:
        update(h, s)
    return h.hexdigest()


def adapter_identity(adapter: Any) -> list:
    """What the features depend on besides the examples: the adapter's name and version,
    the model version, and any option the adapter reports (e.g. its loss reduction)."""
    return [
        str(getattr(adapter, "name", type(adapter).__name__)),
        str(getattr(adapter, "version", "")),
        str(getattr(adapter, "model_version", "")),
        {str(k): str(v) for k, v in sorted(getattr(adapter, "options", {}).items())},
    ]


def file_sha256(path) -> str:
    """sha256 of a file's bytes, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
