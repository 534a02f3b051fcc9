"""The `hpcingest` command line: parses arguments and hands off to one module per command."""

from __future__ import annotations

import argparse
import os
import sys

from hpcingest import __version__
from hpcingest.launch import launcher_rank


class _Parser(argparse.ArgumentParser):
    """Only the first task prints usage errors, so `srun -n 256` shows one message, not 256."""

    def error(self, message: str):  # type: ignore[override]
        if launcher_rank() == 0:
            self.print_usage(sys.stderr)
            print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def add_walk_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that walks a source (old framework names)."""
    parser.add_argument("--files_per_task", type=int, default=50, metavar="N",
                        help="names per stat batch, the unit of stealable work (default 50)")
    parser.add_argument("--exclude_file_type", nargs=1, default=None, metavar="TYPES",
                        help="comma list of regular,directory,character,block,socket,pipe,link")
    parser.add_argument("--exclude_file_name", nargs="+", default=None, metavar="REGEX",
                        help="skip non-directories whose absolute path re.match()es any REGEX")
    parser.add_argument("--exclude_directory_name", nargs="+", default=None, metavar="REGEX",
                        help="skip directories (and their subtrees) whose absolute path re.match()es any REGEX")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hpcingest", description=(
        "MPI-parallel ingest of parallel-filesystem trees and S3 buckets into iRODS. "
        "Run under srun or mpiexec for many ranks, or alone for one."))
    parser.add_argument("--version", action="version", version=f"hpcingest {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    scan = commands.add_parser("scan", help="walk a directory tree in parallel and summarize it (no iRODS)",
                               description="Walk SRC with every rank and print a summary.")
    scan.add_argument("src", metavar="SRC", help="directory to walk")
    add_walk_options(scan)
    scan.add_argument("--list", metavar="FILE",
                      help="write every entry's path relative to SRC, NUL-terminated, into FILE")
    scan.add_argument("--json", metavar="FILE", help="write the summary as JSON into FILE "
                      "(keys include files, directories, symlinks, other, bytes = total size of "
                      "regular files, errors, elapsed_s, ranks)")
    scan.add_argument("--quiet", action="store_true", help="print no summary")

    demo = commands.add_parser("demo", help="quick start: generate a sample tree and run the parallel job on it")
    demo.add_argument("--workdir", default="hpcingest-demo", help="where the sample tree and results go")
    demo.add_argument("--ranks", type=int, default=2, help="MPI ranks to start with mpiexec (default 2)")
    demo.add_argument("--files", type=int, default=20_000, help="files in the sample tree (default 20000)")

    tree = commands.add_parser("sample-tree", help="generate a deterministic sample tree (benchmarks, tests)")
    tree.add_argument("dir", metavar="DIR")
    tree.add_argument("--files", type=int, default=10_000)
    tree.add_argument("--seed", type=int, default=0)
    tree.add_argument("--layout", choices=("balanced", "skewed"), default="balanced")

    commands.add_parser("zone", add_help=False, help="serve the built-in iRODS test zone (see `zone --help`)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["zone"]:
        from hpcingest.zone.cli import main as zone_main

        return zone_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "scan":
        from hpcingest import scan
        from hpcingest.launch import run_collectively

        return run_collectively(lambda comm: scan.run(comm, args))
    if args.command == "demo":
        from hpcingest import demo

        return demo.run(args)
    if args.command == "sample-tree":
        from hpcingest import sample

        made = sample.generate(args.dir, files=args.files, seed=args.seed, layout=args.layout)
        print(f"{os.fsdecode(made.root)}: {made.files:,} files, {made.directories:,} directories, "
              f"{made.bytes:,} bytes")
        return 0
    parser.print_help()
    return 2
