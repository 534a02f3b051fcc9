"""`python -m hpcingest` runs the same command line as the `hpcingest` script."""

import sys

from hpcingest.cli import main

sys.exit(main())
