"""`srgan data ...`: sample data, prepare a dataset, build the patch cache, explore it (EDA)."""

from __future__ import annotations

import argparse

from srgan.cli import data_eda


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("data", help="sample, prepare, cache and explore datasets")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data_eda.register(commands)
