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
``ARE_STORAGE``        the default study storage (default ``./studies/are-search.db``; :func:`resolve_storage`)
=====================  ==========================================================================
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from search.values import path

if TYPE_CHECKING:  # pragma: no cover
    from search.storage import StorageURL

__all__ = ["LoadOptions", "RunOptions", "ENV_VARS", "INPUT_KEYS", "STORAGE_ENV", "DEFAULT_STUDIES_DIR",
           "default_data_root", "load_options", "resolve_storage"]

#: option -> the environment variable it falls back to.
ENV_VARS = {
    "data_root": "ARE_DATA_ROOT",
    "text_root": "ARE_TEXT_ROOT",
    "checkpoint_root": "ARE_CHECKPOINT_ROOT",
    "cache_dir": "ARE_CACHE_DIR",
    "jina_path": "ARE_JINA_PATH",
}
#: The folder of the default storage and reports, relative to the working directory.
DEFAULT_STUDIES_DIR = Path("studies")
#: The environment variable naming the default storage (before ``./studies/are-search.db``).
STORAGE_ENV = "ARE_STORAGE"
#: The keyword arguments of the API that are :class:`LoadOptions` fields.
INPUT_KEYS = ("data_root", "text_root", "checkpoint_root", "cache_dir", "encoder", "offline", "device",
              "batch_size", "threads")
_PATHS = ("data_root", "text_root", "checkpoint_root", "cache_dir", "jina_path")


def default_data_root(cache_dir: str | os.PathLike) -> str:
    """The data root used when none is given: ``raw/`` under the cache folder (filled by downloads)."""
    return str(Path(cache_dir) / "raw")


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
        values.setdefault("data_root", default_data_root(values["cache_dir"]))
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


def load_options(options: LoadOptions | None, given: Mapping[str, Any]) -> LoadOptions:
    """The :class:`LoadOptions` of an API call: ``options`` (or the environment's, resolved now) with the
    :data:`INPUT_KEYS` values in ``given`` that are not None."""
    values = {key: given.get(key) for key in INPUT_KEYS}
    if options is None:
        return LoadOptions.resolve(**values)
    return options.replace(**values)


def resolve_storage(storage: "str | os.PathLike | StorageURL | None", spec_storage: str | None = None,
                    env: Mapping[str, str] | None = None) -> "StorageURL":
    """The storage to use, parsed once: ``storage``, else the spec's, else ``$ARE_STORAGE``, else
    ``./studies/are-search.db``. Raises StorageError naming a text that is no storage URL."""
    from search.storage import StorageURL, default_storage

    env = os.environ if env is None else env
    chosen = storage or spec_storage or env.get(STORAGE_ENV)
    return StorageURL.parse(chosen) if chosen else default_storage(DEFAULT_STUDIES_DIR)


@dataclass(frozen=True)
class RunOptions:
    """Where a run's trials go, as one typed object built once by the CLI, the API or a campaign.

    workers: local worker processes (None: one per device); ray: run on a Ray cluster, with
    gpus_per_trial / cpus_per_trial (fractions allowed), max_concurrent trials and the cluster's
    address (None: start or join a local one); fail_stale: fail and re-queue now the RUNNING trials
    that no live worker vouches for (see :mod:`search.study.stale`).
    """

    workers: int | None = None
    ray: bool = False
    gpus_per_trial: float | None = None
    cpus_per_trial: float | None = None
    max_concurrent: int | None = None
    address: str | None = None
    fail_stale: bool = False

    RAY_ONLY = ("gpus_per_trial", "cpus_per_trial", "max_concurrent", "address")

    def checked(self, options: LoadOptions) -> "RunOptions":
        """These options, after UsageError for a wrong mix of local (``--workers``, ``--device``) and Ray options."""
        from search.errors import UsageError

        if self.ray:
            if options.device is not None or self.workers is not None:
                raise UsageError("with --ray, Ray places the trials: use --gpus-per-trial / --cpus-per-trial / "
                                 "--max-concurrent instead of --device / --workers")
        else:
            given = ["--" + key.replace("_", "-") for key in self.RAY_ONLY if getattr(self, key) is not None]
            if given:
                raise UsageError(f"only with --ray: {', '.join(given)}")
        return self

    def ray_resources(self) -> dict[str, Any]:
        """The Ray-only options that were given, by keyword (``gpus_per_trial``, ...)."""
        return {key: getattr(self, key) for key in self.RAY_ONLY if getattr(self, key) is not None}
