"""``python -m search``: the are-search command line."""
import sys

from search.cli import main

sys.exit(main())
