"""``python -m elektronn.labels`` is ``elektronn-labels``."""

import sys

from .cli import main

sys.exit(main())
