"""`python -m hpcingest` runs the same command line as the `hpcingest` script."""

from hpcingest.cli import console_main

console_main()
