"""``python -m multilane``: the same as the ``multilane`` command."""

import sys

from .cli import main

sys.exit(main())
