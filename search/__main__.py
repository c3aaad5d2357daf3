"""``python -m search``: the are-search command line."""
from search.cli import entry

entry()
