"""`srgan data eda`: placeholder until the EDA issue lands."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eda", help="(not yet available)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from srgan.errors import SrganError

    raise SrganError("'srgan data eda' is not available yet")
