"""``python tests/moto_behind.py SECONDS ARGS...``: moto's S3 server stamping objects SECONDS
behind the real clock.

It stands for an S3 endpoint whose clock lags the ingesting nodes', and for S3's own way of
stamping an object with the time its upload *began* (a multipart upload's CreateMultipartUpload):
either way an object written after a pass's listing can carry a LastModified before it.  moto
stamps at completion, so only a lagging clock reproduces that here."""

import datetime
import sys

import moto.s3.models
from moto.server import main

_behind = datetime.timedelta(seconds=float(sys.argv[1]))
_utcnow = moto.s3.models.utcnow
moto.s3.models.utcnow = lambda: _utcnow() - _behind
main(sys.argv[2:])
