"""`python -m mamrl`: the same as the `mamrl` command."""

import sys

from mamrl.cli import main

sys.exit(main())
