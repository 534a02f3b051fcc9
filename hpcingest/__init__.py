"""hpcingest: MPI-parallel ingest of parallel-filesystem trees and S3 buckets into iRODS."""

__version__ = "0.1.0"
