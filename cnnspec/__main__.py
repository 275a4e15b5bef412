"""`python -m cnnspec` (and `torchrun -m cnnspec train ...`)."""

import sys

from cnnspec.cli import main

if __name__ == "__main__":
    sys.exit(main())
