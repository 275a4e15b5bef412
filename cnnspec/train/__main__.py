"""``python -m cnnspec.train ...``: the same as ``cnnspec train ...``."""

import sys

from cnnspec.train.cli import main

sys.exit(main())
