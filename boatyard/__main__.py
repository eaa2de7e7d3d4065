"""``python -m boatyard``: the same as the ``boatyard`` console script."""

import sys

from boatyard.cli import main

sys.exit(main())
