"""`srgan` entry point: builds the parser from one module per command group and runs the handler.

Errors a user can cause (:class:`srgan.errors.SrganError`) are printed as one line and exit 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from srgan import __version__
from srgan.cli import data, demo, evaluate, export, score, serve, train, upscale

COMMAND_GROUPS = (data, train, evaluate, score, upscale, export, serve, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srgan",
        description="Single-image super-resolution with SRGAN: prepare data, explore it, train, "
        "evaluate, upscale, export and serve.",
    )
    parser.add_argument("--version", action="version", version=f"srgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # File names need not be valid UTF-8 (they hold raw bytes): printing one must never crash a
    # command, whatever the terminal's encoding; undecodable bytes are shown escaped.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        # A group without its subcommand (e.g. `srgan data`) prints that group's help.
        (getattr(args, "group_parser", None) or parser).print_help()
        return 2
    from srgan.errors import SrganError

    try:
        return int(handler(args) or 0)
    except SrganError as exc:
        print(f"srgan: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("srgan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
