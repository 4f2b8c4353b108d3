"""``python -m biodl`` runs the CLI."""

import sys

from biodl.cli.main import main

sys.exit(main())
