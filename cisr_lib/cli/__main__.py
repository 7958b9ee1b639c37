"""``python -m cisr_lib.cli``: the ``cisr`` command."""

import sys

from cisr_lib.cli import main

sys.exit(main())
