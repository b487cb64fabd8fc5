"""Masking a gateway's error reply before it is stored: `excerpt` against masking it whole.

A gateway or a proxy in front of it may answer an error with a page of megabytes; each
failed message stores the first 500 characters, masked. The baseline masks the whole reply
and then cuts it (the code before `SecretRegistry.excerpt`); `excerpt` reads only the part
the stored characters can come from. Eight secrets are registered by default, as in a
deployment with gateways, webhook and API tokens and database passwords; `--secrets` shows
how the cost grows with their number (all of them are one compiled alternation).

    .venv/bin/python bench/excerpt.py
    .venv/bin/python bench/excerpt.py --sizes 100000 1000000 4000000 --repeat 3
    .venv/bin/python bench/excerpt.py --secrets 32
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

from campaigner.masking import excerpt, mask, register_secret

LIMIT = 500  # what the ledger keeps of an error (dispatch.ledger.MAX_ERROR_CHARS)


def masked_cut(reply: str) -> str:
    """The baseline: mask the whole reply, then cut it."""
    return mask(reply)[:LIMIT]


def best_of(repeat: int, work: Callable[[], str]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 4_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--secrets", type=int, default=8)
    args = parser.parse_args()
    for n in range(args.secrets):
        register_secret(f"Gw/Tok+{n:02d}=SECRET x", username="campaigner")
    mask("compile the pattern once, outside the timings")
    page = "<html><body><h1>502 Bad Gateway</h1><p>upstream said no</p>"
    print(f"{args.secrets} secrets registered")
    print(f"{'reply bytes':>12} {'baseline mask+cut':>18} {'excerpt':>10} {'speed-up':>9}")
    for size in args.sizes:
        reply = (page * (size // len(page) + 1))[:size]
        assert excerpt(reply, LIMIT) == mask(reply)[:LIMIT]
        baseline = best_of(args.repeat, partial(masked_cut, reply))
        bounded = best_of(args.repeat, partial(excerpt, reply, LIMIT))
        print(f"{size:>12,} {baseline:>17.3f}s {bounded:>9.4f}s {baseline / bounded:>8.0f}x")


if __name__ == "__main__":
    main()
