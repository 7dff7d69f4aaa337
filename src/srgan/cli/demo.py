"""`srgan demo`: the whole workflow on the embedded sample data (what `make demo` runs)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the whole workflow on the embedded sample data")
    parser.add_argument("--out", default="demo_output", help="folder for every result (default: demo_output)")
    parser.add_argument("--train-iters", type=int, default=60, help="iterations of the demonstration training run")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from srgan.demo import run_demo

    result = run_demo(args.out, train_iters=args.train_iters)
    print(f"demo report: {result.index.resolve()}")
    if result.failed:  # `make demo` must fail loudly, not pass with a broken step
        print(f"srgan: error: {len(result.failed)} demo step(s) failed: {'; '.join(result.failed)}", file=sys.stderr)
        return 1
    return 0
