"""`python -m rbcore score ...`: see `rbcore.cli`."""

from rbcore._xla import exit_with
from rbcore.cli import main

if __name__ == "__main__":
    exit_with(main())
