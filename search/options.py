"""Options that shape loading, as one typed object resolved once at the edge: :class:`LoadOptions`.

The command line, ``bench/`` and the tests build a :class:`LoadOptions` with :meth:`LoadOptions.resolve`
-- the only place in ``search`` that reads the environment or expands a user's path -- and pass it
down to every command, runner and worker process. Nothing below the edge reads ``ARE_*`` variables,
``~`` or the working directory.

Environment (used only for options not given explicitly):

=====================  ==========================================================================
``ARE_DATA_ROOT``      raw triple files ``<Dataset>/<version>/raw/<file>`` (default:
                       ``~/.cache/are-search/raw``, filled by downloads)
``ARE_TEXT_ROOT``      relation texts ``<llm>/<dataset>.json`` (default: downloaded into the cache)
``ARE_CHECKPOINT_ROOT`` ``<name>.pth`` for checkpoint names (default: downloaded into the cache)
``ARE_CACHE_DIR``      processed datasets, downloads, text vectors (default ``~/.cache/are-search``)
``ARE_JINA_PATH``      a local copy of jina-embeddings-v3 for the ``auto``/``jina`` encoders
=====================  ==========================================================================
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from search.values import path

__all__ = ["LoadOptions", "ENV_VARS"]

#: option -> the environment variable it falls back to.
ENV_VARS = {
    "data_root": "ARE_DATA_ROOT",
    "text_root": "ARE_TEXT_ROOT",
    "checkpoint_root": "ARE_CHECKPOINT_ROOT",
    "cache_dir": "ARE_CACHE_DIR",
    "jina_path": "ARE_JINA_PATH",
}
_PATHS = ("data_root", "text_root", "checkpoint_root", "cache_dir", "jina_path")


@dataclass(frozen=True)
class LoadOptions:
    """Where inputs come from and how a model is run; every path absolute.

    data_root / text_root / checkpoint_root: the three roots of real files (see README); cache_dir:
    the cache folder; encoder: text encoder spec (``auto``, ``minilm``, ``jina[:PATH]``, a vectors
    file) or None for the study's recorded one; jina_path: a local jina-embeddings-v3 copy; offline:
    never download anything (datasets, texts, checkpoints); device: ``cpu``/``cuda[:N]`` or None
    (CUDA when available); batch_size: (anchor, relation) pairs per entity pass (None: by device);
    threads: torch CPU threads (None: torch's default).
    """

    data_root: str | None = None
    text_root: str | None = None
    checkpoint_root: str | None = None
    cache_dir: str | None = None
    encoder: str | None = None
    jina_path: str | None = None
    offline: bool = False
    device: str | None = None
    batch_size: int | None = None
    threads: int | None = None

    @property
    def download(self) -> bool:
        """Whether missing inputs may be downloaded."""
        return not self.offline

    @classmethod
    def resolve(cls, env: Mapping[str, str] | None = None, base: Path | None = None, **given: Any) -> "LoadOptions":
        """The edge: ``given`` values (None = not given), then ``env`` (default ``os.environ``), then defaults.

        Paths are expanded (``~``) and made absolute against ``base`` (default: the working directory).
        """
        env = os.environ if env is None else env
        unknown = set(given) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown load options: {', '.join(sorted(unknown))}")
        values = {key: value for key, value in given.items() if value is not None}
        for key, var in ENV_VARS.items():
            if values.get(key) is None and env.get(var):
                values[key] = env[var]
        values.setdefault("cache_dir", "~/.cache/are-search")
        for key in _PATHS:
            if values.get(key) is not None:
                values[key] = str(path(values[key], "--" + key.replace("_", "-"), base))
        values.setdefault("data_root", str(Path(values["cache_dir"]) / "raw"))
        encoder = values.get("encoder")
        if isinstance(encoder, str) and encoder.startswith("jina:"):
            local = encoder[len("jina:"):]  # a local copy, or a hub id left as it is
            if os.path.exists(os.path.expanduser(local)):
                values["encoder"] = "jina:" + str(path(local, "--encoder", base))
        elif isinstance(encoder, str) and encoder not in ("auto", "minilm", "jina"):
            values["encoder"] = str(path(encoder, "--encoder", base))  # a file of precomputed vectors
        return cls(**values)

    def replace(self, **changes: Any) -> "LoadOptions":
        """A copy with ``changes`` (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def text(self, encoder: str | None = None) -> Any:
        """The :class:`are_model.pipeline.TextOptions` of these options (``encoder`` wins over ours)."""
        from are_model.pipeline import TextOptions

        return TextOptions(root=self.text_root, encoder=encoder or self.encoder or "auto", cache_dir=self.cache_dir,
                           download=self.download, jina_path=self.jina_path)

    def resolved_device(self) -> str:
        """``device``, or ``cuda`` when available, else ``cpu``; UsageError for an unusable device."""
        import torch

        from search.errors import UsageError

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            parsed = torch.device(device)
        except RuntimeError as error:
            raise UsageError(f"bad device {device!r}: {' '.join(str(error).split())}") from None
        if parsed.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(f"device {device}: no CUDA device is available here (use cpu)")
        return device
