"""Pinned torch threads: scores, and so the last digits of shares, must not depend on them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

# Float reductions split differently over threads, so the same inputs give other bits with 1
# than with 2 threads (measured); one thread was also the fastest for the sandbox sizes.
ATTRIBUTION_THREADS = 1


@contextmanager
def torch_threads(n: int = ATTRIBUTION_THREADS) -> Iterator[None]:
    """Run with n intra-op threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
