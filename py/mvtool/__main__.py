"""Entry point for ``python -m mvtool``."""

import sys

from mvtool.cli import main

sys.exit(main())
