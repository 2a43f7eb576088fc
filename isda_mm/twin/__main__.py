"""``python -m isda_mm.twin``: the ``isda-config`` command."""
import sys

from .cli import main

sys.exit(main())
