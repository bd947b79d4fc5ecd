"""`python -m rbcore score ...`: see `rbcore.cli`."""

import sys

from rbcore.cli import main

if __name__ == "__main__":
    sys.exit(main())
