"""``python -m elektronn.train CONFIG`` is ``elektronn-train CONFIG`` (the form torchrun runs)."""

import sys

from .cli import train_main

sys.exit(train_main())
