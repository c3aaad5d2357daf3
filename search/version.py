"""The version of are-search (``are-search --version``; stored in reports)."""

__version__ = "0.3.0"
