"""Block-wise top-k scoring at catalog scale inside a fixed memory budget.

    .venv/bin/python benchmarks/attribution_scale.py --gens 100000 --rows 1000000 --dim 64

Scores G generations against N synthetic training feature rows (seeded Gaussian, generated
block by block as a chunked on-disk cache would be read, so no 10^6-row file is needed) and
keeps only each generation's top-k plus score moments (attribution/scoring.py). Prints the
peak resident memory of the process (ru_maxrss) next to what the full score matrix would
need, and fails if the peak exceeds --budget-gib.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attribution.scoring import blockwise_topk


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gens", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--row-block", type=int, default=32_768)
    ap.add_argument("--query-block", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-gib", type=float, default=4.0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = peak_rss_gib()
    g = torch.Generator().manual_seed(0)
    queries = torch.randn(args.gens, args.dim, generator=g)

    def blocks():
        for s in range(0, args.rows, args.row_block):
            gb = torch.Generator().manual_seed(1 + s)
            yield torch.randn(min(args.row_block, args.rows - s), args.dim, generator=gb)

    done = [0]
    t0 = time.perf_counter()

    def progress(b: int) -> None:
        done[0] += b
        if done[0] % (args.row_block * 8) < b:
            el = time.perf_counter() - t0
            print(
                f"  {done[0]:>9}/{args.rows} rows  {el:6.0f}s  peak {peak_rss_gib():.2f} GiB",
                flush=True,
            )

    state, n = blockwise_topk(queries, blocks(), args.k, args.query_block, progress=progress)
    secs = time.perf_counter() - t0
    res = {
        **vars(args),
        "seconds": round(secs, 1),
        "us_per_generation": round(1e6 * secs / args.gens, 1),
        "peak_rss_gib": round(peak_rss_gib(), 3),
        "rss_before_gib": round(base, 3),
        "full_matrix_gib": round(args.gens * args.rows * 4 / 2**30, 1),
        "n_rows_scored": n,
        "top1_of_first_gen": float(state.vals[0, 0]),
    }
    print(json.dumps(res, indent=1))
    if res["peak_rss_gib"] > args.budget_gib:
        raise SystemExit(f"peak {res['peak_rss_gib']} GiB exceeds budget {args.budget_gib} GiB")
    return res


if __name__ == "__main__":
    main()
