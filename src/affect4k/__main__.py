"""``python -m affect4k``: the same as the ``affect4k`` command."""

import sys

from affect4k.commands.cli import main

sys.exit(main())
