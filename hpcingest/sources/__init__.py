"""Sources list entries for the engine: the POSIX filesystem walker, and S3.

The two functions here are what every command that walks does with SRC: check it once on
rank 0 (a clear error before any rank works), then open the same source on every rank.
"""

from __future__ import annotations

import math
import os

from typing import TYPE_CHECKING

from hpcingest.exclusions import Exclusions
from hpcingest.sources.posix import PosixSource, check_root

if TYPE_CHECKING:  # the S3 module (and botocore) is imported only by jobs that read S3
    from hpcingest.sources.s3 import S3Settings, S3Source


class WalkOptionError(ValueError):
    """A walk option that cannot work (reported as a usage error)."""


class S3SourceError(ValueError):
    """The S3 source cannot be listed at all: a usage error, reported before work starts."""


FILES_PER_TASK_MAX = 1_000_000  # names per stat batch at most


def check_walk_options(args) -> None:
    """Refuses, before any rank walks, options the walk cannot work with.  --files_per_task
    has a ceiling: a batch is the unit ranks steal, so one of more than a million names
    spreads nothing, holds every name in memory at once, and a number past sys.maxsize
    is no batch size at all (itertools.islice refuses it mid-walk, after `start` has
    recorded its job as running)."""
    if not 1 <= args.files_per_task <= FILES_PER_TASK_MAX:
        raise WalkOptionError(f"--files_per_task must be at least 1 and at most {FILES_PER_TASK_MAX:,}")
    if getattr(args, "stat_threads", 1) < 1:
        raise WalkOptionError("--stat_threads must be at least 1")
    if args.max_rate is not None and not 0 < args.max_rate < math.inf:  # NaN too: it meant no limit at all
        raise WalkOptionError("--max_rate must be a positive number of entries per second")


def check_source(args) -> tuple[bytes, S3Settings | None]:
    """The root every rank walks (an absolute real directory, or ``b"/bucket/prefix"``) and,
    for S3, the settings; raises SourceRootError or S3SourceError saying what is wrong."""
    if not args.src:
        # os.path.abspath("") is the current directory: an unset shell variable must not ingest $PWD
        raise WalkOptionError("SRC is empty: give the directory (or /bucket/prefix) to read; "
                              "an empty argument is never taken as the current directory")
    if not args.s3_keypair:
        return os.path.realpath(check_root(args.src)), None
    from hpcingest.sources.s3 import S3Settings, check_s3_source, parse_s3_source, source_path

    settings = S3Settings.from_options(args)
    bucket, prefix = parse_s3_source(args.src)
    check_s3_source(settings, bucket, prefix)  # credentials, bucket and endpoint
    return os.fsencode(source_path(bucket, prefix)), settings


def open_source(root: bytes, files_per_task: int, exclusions: Exclusions,
                s3: S3Settings | None, stat_threads: int = 1) -> PosixSource | S3Source:
    if s3 is None:
        return PosixSource(root, files_per_task, exclusions, stat_threads)
    from hpcingest.sources.s3 import S3Source, parse_s3_source

    return S3Source(s3, *parse_s3_source(os.fsdecode(root)), files_per_task, exclusions)
