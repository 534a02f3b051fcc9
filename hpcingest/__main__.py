"""`python -m hpcingest` runs the same command line as the `hpcingest` script."""

from hpcingest.cli import main
from hpcingest.launch import exit_process

exit_process(main())
