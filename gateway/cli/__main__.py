"""`python -m gateway.cli …`, as `lienthong …` (how tests and benchmarks start a node)."""

import sys

from gateway.cli import main

sys.exit(main())
