"""Block-wise scoring with bounded memory: top-k per generation without the score matrix.

Scores are q @ phi^T for query features q (m, p) against training features phi streamed in
row blocks. For every block the (m_block x rows_block) score tile is reduced at once to the
running top-k, plus running sum / sum of squares / positive sum (the statistics the shares'
confidence rules need), so memory is O(m_block * rows_block + m * k), independent of the
catalog size. The full matrix of 10^5 generations x 10^6 works (400 GB as float32) is never
formed; benchmarks/attribution_scale.py measures the peak.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from attribution.shares import ScoreSummary


class StreamingTopK:
    """Running top-k and moments for m queries over row blocks that arrive in order."""

    def __init__(self, m: int, k: int) -> None:
        if k < 1:
            raise ValueError("k must be >= 1")
        self.m, self.k = m, k
        # Empty slots are (-inf, -1) and are dropped in summaries(), so a catalog smaller
        # than k, or queries updated one at a time, need no special case.
        self.vals = torch.full((m, k), -torch.inf, dtype=torch.float32)
        self.idx = torch.full((m, k), -1, dtype=torch.int64)
        self.s1 = torch.zeros(m, dtype=torch.float64)
        self.s2 = torch.zeros(m, dtype=torch.float64)
        self.pos = torch.zeros(m, dtype=torch.float64)

    def update(
        self,
        scores: torch.Tensor,
        start: int,
        rows: slice = slice(None),
        s1: torch.Tensor | None = None,
        s2: torch.Tensor | None = None,
    ) -> None:
        """scores (m_rows, b) for training rows start..start+b of queries ``rows``.

        s1/s2: the tile's row sums and sums of squares if the caller has them cheaper than
        from the tile (blockwise_topk derives them from the block's Gram matrix).
        """
        scores = scores.float()
        b = scores.shape[1]
        # Per-tile reductions in float32 (a float64 reduction of the tile cost 10x the
        # matmul, measured), accumulated across tiles in float64.
        self.s1[rows] += (scores.sum(1) if s1 is None else s1).double()
        self.s2[rows] += ((scores * scores).sum(1) if s2 is None else s2).double()
        self.pos[rows] += scores.clamp_min(0).sum(1).double()
        if b == 0:
            return
        v, i = torch.topk(scores, min(self.k, b), dim=1)
        cand_v = torch.cat([self.vals[rows], v], dim=1)
        cand_i = torch.cat([self.idx[rows], i + start], dim=1)
        v2, j = torch.topk(cand_v, self.k, dim=1)
        self.vals[rows] = v2
        self.idx[rows] = torch.gather(cand_i, 1, j)

    def summaries(self, n: int) -> list[ScoreSummary]:
        mean = self.s1 / max(n, 1)
        var = (self.s2 / max(n, 1) - mean * mean).clamp_min(0)
        out = []
        for r in range(self.m):
            keep = self.idx[r] >= 0
            v = self.vals[r][keep].double().numpy()
            i = self.idx[r][keep].numpy()
            # Ties on equal scores: order by training index so results never depend on
            # the block size.
            order = np.lexsort((i, -v))
            out.append(
                ScoreSummary(
                    top_idx=i[order],
                    top_scores=v[order],
                    n=n,
                    mean=float(mean[r]),
                    std=float(var[r].sqrt()),
                    pos_sum=float(self.pos[r]),
                )
            )
        return out


def blockwise_topk(
    queries: torch.Tensor,
    blocks: Iterable[torch.Tensor],
    k: int,
    query_block: int = 4096,
    progress: Callable[[int], None] | None = None,
) -> tuple[StreamingTopK, int]:
    """Top-k of scores queries (m, p) @ phi^T over row blocks phi (b_j, p).

    Returns (state, n_rows). The row blocks are the outer loop so each block is read from
    disk once, whatever m is. Row sums and sums of squares of a tile come from the block's
    column sum and Gram matrix (q . sum_j phi_j and q^T (phi^T phi) q): p x p work per
    query instead of a pass over the (m x b) tile.
    """
    m = queries.shape[0]
    state = StreamingTopK(m, k)
    start = 0
    # The Gram route costs p^2 per row block plus p^2 per query; the direct route b per
    # query. Only many queries against a narrow feature space pay off the Gram.
    use_gram = m > 4 * queries.shape[1]
    for phi in blocks:
        phi = phi.float()
        if use_gram:
            col = phi.sum(0, dtype=torch.float64)
            gram = phi.double().T @ phi.double()
        for r0 in range(0, m, query_block):
            rows = slice(r0, min(m, r0 + query_block))
            q = queries[rows].float()
            if use_gram:
                q64 = q.double()
                s1, s2 = q64 @ col, ((q64 @ gram) * q64).sum(1)
                state.update(q @ phi.T, start, rows, s1=s1, s2=s2)
            else:
                state.update(q @ phi.T, start, rows)
        start += phi.shape[0]
        if progress:
            progress(phi.shape[0])
    return state, start


def iter_row_blocks(arrays: Iterable[np.ndarray | str], block: int) -> Iterator[torch.Tensor]:
    """Re-chunk arrays (or .npy paths, memory-mapped) into float32 tensors of <= block rows."""
    for a in arrays:
        arr = np.load(a, mmap_mode="r") if not isinstance(a, np.ndarray) else a
        for s in range(0, arr.shape[0], block):
            # A copy: memory-mapped chunks are read-only, and torch wants writable memory.
            yield torch.from_numpy(np.array(arr[s : s + block], dtype=np.float32))
