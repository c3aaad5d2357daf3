"""Names a package exports but imports only on first use (PEP 562), so importing the package stays cheap.

``are_model``, ``are_model.data`` and ``are_model.text`` export names whose modules need torch or PyG; a caller
that only reads the dataset registry or relation texts (``are-search status``, ``datasets``) never loads them.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str], namespace: MutableMapping[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps a name to the submodule that defines it; the
    first look-up imports that submodule and stores the value in ``namespace`` (the package's ``globals()``), so
    later look-ups skip the hook. Raises AttributeError for a name it does not export."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
