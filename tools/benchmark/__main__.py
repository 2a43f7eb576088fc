"""``python tools/benchmark [core] [heads] [model]``: see :mod:`.cli`."""
import os
import sys

# Run as a folder: make ``benchmark`` (this folder) and ``isda_mm`` (for a
# checkout without ``pip install -e .``) importable.
TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [TOOLS, os.path.dirname(TOOLS)]

from benchmark.cli import main  # noqa: E402

if __name__ == '__main__':
    main()
