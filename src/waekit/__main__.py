"""``python -m waekit`` (and ``torchrun -m waekit``) run the command line."""

import sys

from waekit.cli import main

sys.exit(main())
