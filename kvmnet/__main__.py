"""`python -m kvmnet`: the CLI."""
import sys

from kvmnet.cli import main

sys.exit(main())
