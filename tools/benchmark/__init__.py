"""isda_mm's benchmark: ``python tools/benchmark`` (see ``cli.py``)."""
