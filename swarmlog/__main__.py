"""``python -m swarmlog``."""

import sys

from swarmlog.cli import main

sys.exit(main())
