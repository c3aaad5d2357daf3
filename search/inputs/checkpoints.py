"""Checkpoints by name: a local root, the download cache, or the public URL (verified by sha256).

``--checkpoint`` takes a path or one of the published checkpoints' names (:data:`KNOWN_CHECKPOINTS`):
``ultra_3g``, ``semma``, ``ARE-V3``, ``ARE-V5``, ``fusion``. A name resolves, in order, to

1. ``<root>/<name>.pth`` in the local root the caller passes (the CLI: ``--checkpoint-root`` or
   ``$ARE_CHECKPOINT_ROOT``), used as it is;
2. ``<cache_dir>/<name>.pth`` in the download cache the caller passes (``search.api``:
   ``<cache>/checkpoints``) when its sha256 is the published one;
3. a download from the public URL into the cache (``are_model.data.download.fetch_url``: pooch, with
   retries and, when asked, its progress bar on stderr; then the project's one atomic write
   ``are_model.fileio.atomic_write``), checked against the recorded sha256 before it is renamed into
   place, so a corrupt or changed download is refused in one line (both hashes) and never lands.

Every URL points at a fixed commit of the repository that publishes the file, so the bytes cannot
change under a name; the sha256 values are those of the published files.

Nothing here reads the environment or the working directory, and there is no default folder: the root
and the download cache are arguments (``search.options`` resolves them at the edge). Without a cache
folder a name is looked up in the root only, and downloading it is an error that says so.
"""
from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from are_model.checkpoint import CheckpointError
from are_model.data.download import HashMismatchError, fetch_url
from are_model.fileio import sha256_file
from search.errors import UsageError
from search.inputs.roots import unset_root_hint
from search.values import path as path_rule

if TYPE_CHECKING:  # pragma: no cover
    from search.options import LoadOptions

__all__ = [
    "KnownCheckpoint",
    "KNOWN_CHECKPOINTS",
    "CheckpointDownloadError",
    "known_checkpoint",
    "resolve_checkpoint",
    "download_checkpoint",
    "sha256_of",
]

_logger = logging.getLogger(__name__)

#: Seconds a download may wait for the server before it gives up.
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class KnownCheckpoint:
    """A published checkpoint: its name, where it is served from, and its sha256."""

    name: str
    url: str
    sha256: str
    description: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.pth"


def _github_raw(repo: str, commit: str, path: str) -> str:
    return f"https://github.com/{repo}/raw/{commit}/{path}"


#: The published checkpoints, by name. The files are plain git blobs (no Git LFS) of a few MB.
KNOWN_CHECKPOINTS: dict[str, KnownCheckpoint] = {
    entry.name: entry
    for entry in (
        KnownCheckpoint(
            "ultra_3g",
            _github_raw("DeepGraphLearning/ULTRA", "68433c19a465735ae59f7f947e6dd062bab7b445", "ckpts/ultra_3g.pth"),
            "fdedc01b0045fc089d2ad5da08569466b7b221691fe978a18e91082bbb133c18",
            "ULTRA pretrained on 3 graphs (profile ultra)",
        ),
        KnownCheckpoint(
            "semma",
            _github_raw("arvindh75/semma", "8d07addd39faf24115ebbfcc199959b434fbf514", "ckpts/semma.pth"),
            "b2c50da070b3b11654bfbefbba1171185008a61cc095d6610f6740fb78189381",
            "SEMMA (profile semma)",
        ),
        KnownCheckpoint(
            "ARE-V3",
            _github_raw("ACynj/semma", "b0cd3873e301a46a649e2b65518bc8ec42390b12", "ckpts/ARE-V3.pth"),
            "fff031bb5ec5c3c76d6c6f161cc6469e8c5f9b201527647961e58cf4960930fe",
            "ARE with the mixing similarity enhancer (profile are-mix; prompt enhancer untrained)",
        ),
        KnownCheckpoint(
            "ARE-V5",
            _github_raw("ACynj/semma", "f034a43b2d19683e5866cd513bb2b12449aab4cf", "ckpts/ARE-V5.pth"),
            "6e9b0f284cb897faad90428b3dc92b4e5811301e4a5bf623bd95aa5b084fb524",
            "ARE with the mixing similarity enhancer (profile are-mix; prompt enhancer untrained)",
        ),
        KnownCheckpoint(
            "fusion",
            _github_raw("ACynj/semma", "fe7e96c2c0de1c74eb0629fc86f8cf18bedb1cee", "ckpts/fusion.pth"),
            "b4028f82d1c98ce39d4465d9aa7498d334a19c45d07a2d0a927957d0d0de6b37",
            "ARE with learnable 2-weight fusion (profile are-fusion)",
        ),
    )
}


class CheckpointDownloadError(CheckpointError):
    """A known checkpoint that is not at hand and could not be downloaded (one line: name and URL)."""


def known_checkpoint(value: str) -> KnownCheckpoint | None:
    """The known checkpoint called ``value`` (any case, ``.pth`` suffix allowed), else None."""
    if not isinstance(value, str):
        return None
    key = value.strip()
    if key.lower().endswith(".pth"):
        key = key[: -len(".pth")]
    if "/" in key or os.sep in key:
        return None
    for name, entry in KNOWN_CHECKPOINTS.items():
        if name.lower() == key.lower():
            return entry
    return None


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 of the file at ``path``."""
    return sha256_file(path)


def _reason(error: BaseException) -> str:
    text = " ".join(str(getattr(error, "reason", None) or error).split())
    return text or type(error).__name__


def download_checkpoint(entry: KnownCheckpoint, cache_dir: str | os.PathLike, *,
                        timeout: float = DOWNLOAD_TIMEOUT_S, progress: bool = False) -> Path:
    """Download ``entry`` into ``cache_dir``, check its sha256, then move it into place; returns the file.

    Raises CheckpointDownloadError naming the checkpoint and its URL on any failure (a sha256 mismatch:
    the expected and the downloaded hash); a partial or corrupt download never lands under the final name.
    """
    target = Path(cache_dir) / entry.file_name
    where = f"cannot download checkpoint {entry.name!r} from {entry.url}"
    _logger.info("downloading checkpoint %s from %s", entry.name, entry.url)
    try:
        # the staging folder and the temporary file are this call's own, so two processes fetching at once
        # never rename each other's file; a failed or corrupt download leaves nothing behind
        fetch_url(entry.url, target, sha256=entry.sha256, timeout=timeout, progress=progress)
    except HashMismatchError as error:
        raise CheckpointDownloadError(f"{where}: sha256 mismatch: expected {error.expected}, got {error.got}; "
                                      f"{target} was not written") from None
    except (OSError, ValueError) as error:  # requests' errors are OSErrors too
        raise CheckpointDownloadError(f"{where}: {_reason(error)}") from None
    _logger.info("checkpoint %s saved to %s", entry.name, target)
    return target


def resolve_checkpoint(value: str | os.PathLike, *, root: str | os.PathLike | None = None,
                       cache_dir: str | os.PathLike | None = None, download: bool = True,
                       progress: bool = False) -> Path:
    """The checkpoint file that ``value`` (a path or a known name) stands for.

    An existing file wins. Otherwise a known name is looked up in ``root``, then in ``cache_dir``, then
    downloaded into ``cache_dir`` when ``download`` is true (None: no cache, so nothing to download into).
    Raises CheckpointError (one line) for a missing path, an unknown name, no cache to download into or
    a failed download (CheckpointDownloadError; without a ``root`` it names ``--checkpoint-root`` and
    ``ARE_CHECKPOINT_ROOT``).
    """
    text = os.fspath(value)
    if not text.strip():
        raise CheckpointError("empty checkpoint: pass a .pth file or one of " + ", ".join(KNOWN_CHECKPOINTS))
    path = path_rule(text, "--checkpoint")  # ~ expanded, absolute: the one rule for paths that enter
    if path.is_file():
        return path
    entry = known_checkpoint(text)
    if entry is None:
        if path.exists():
            raise CheckpointError(f"{path}: not a file")
        looks_like_path = "/" in text or os.sep in text or path.suffix in (".pth", ".pt", ".ckpt")
        if looks_like_path:
            raise CheckpointError(f"{path}: no such checkpoint file")
        lower = {name.lower(): name for name in KNOWN_CHECKPOINTS}
        close = [lower[c] for c in difflib.get_close_matches(text.strip().lower(), list(lower), n=1, cutoff=0.6)]
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise CheckpointError(f"unknown checkpoint {text!r}: {hint}pass a .pth file or one of "
                              + ", ".join(KNOWN_CHECKPOINTS))
    if root is not None:
        local = Path(root) / entry.file_name
        if local.is_file():
            _logger.debug("checkpoint %s -> %s (local root)", entry.name, local)
            return local
        _logger.info("checkpoint %s is not in %s", entry.name, Path(root))
    places = [str(Path(root) / entry.file_name)] if root is not None else []
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cached = cache / entry.file_name
        places.append(str(cached))
        if cached.is_file():
            if sha256_of(cached) == entry.sha256:
                _logger.debug("checkpoint %s -> %s (download cache)", entry.name, cached)
                return cached
            _logger.warning("cached %s does not match the published sha256; downloading it again", cached)
    found = f"not found at {' or '.join(places)}" if places else "not found (no checkpoint root given)"
    if not download:
        raise CheckpointError(f"checkpoint {entry.name!r} {found} and downloading is off (source: {entry.url})")
    if cache is None:
        raise CheckpointError(f"checkpoint {entry.name!r} {found} and there is no download cache to fetch it into "
                              f"(pass cache_dir; source: {entry.url})")
    try:
        return download_checkpoint(entry, cache, progress=progress)
    except CheckpointDownloadError as error:
        if root is not None:
            raise
        # no root was given: say where a local copy would be read from (a new user's first failure)
        raise CheckpointDownloadError(f"{error}; {unset_root_hint('checkpoint_root', entry.file_name)}") from None


def checkpoint_file(value: str, options: "LoadOptions", recorded: Mapping[str, Any] | None = None) -> Path:
    """The file of the checkpoint ``value`` (a name or path) under ``options``' root, cache and download policy.

    recorded: a study's launch record (``checkpoint_file``, ``checkpoint_sha256``). A study made on another
    host may name a path that does not exist here: then the checkpoint is looked up by its recorded file name
    (in the checkpoint root, or as a published checkpoint of that name) and used when its sha256 is the
    recorded one, so a study moved to another host resumes and reports there. Raises CheckpointError (one
    line) when neither is found, naming both.
    """
    from are_model.checkpoint import CheckpointError

    def resolve(text: str) -> Path:
        return resolve_checkpoint(text, root=options.checkpoint_root,
                                  cache_dir=Path(options.cache_dir) / "checkpoints" if options.cache_dir else None,
                                  download=options.download)

    try:
        return resolve(value)
    except CheckpointError as missing:
        name, sha256 = (recorded or {}).get("checkpoint_file"), (recorded or {}).get("checkpoint_sha256")
        if not name or not sha256:
            raise
        candidates = [Path(options.checkpoint_root) / name] if options.checkpoint_root else []
        if known_checkpoint(Path(name).stem) is not None:
            candidates.append(Path(Path(name).stem))
        for candidate in candidates:
            try:
                found = resolve(str(candidate))
            except CheckpointError:
                continue
            if sha256_of(found) == sha256:
                _logger.info("checkpoint %s is not here; using %s, the same file by sha256", value, found)
                return found
        raise CheckpointError(f"{missing}; nor is {name} with sha256 {sha256[:12]}... (the study's checkpoint) in "
                              f"{options.checkpoint_root or 'a checkpoint root (none set)'} or among the published "
                              "checkpoints") from None


def profile_of(path: Path) -> str:
    """The model profile (``ultra | semma | are-mix | are-fusion``) of the checkpoint file ``path``; CheckpointError
    when it holds no known keys."""
    from are_model.checkpoint import CheckpointError, detect_profile, read_state_dict

    profile = detect_profile(read_state_dict(path).keys())
    if profile is None:
        raise CheckpointError(f"{path}: no ULTRA/SEMMA/ARE keys found")
    return profile


def fusion_checkpoint(checkpoint: str, options: "LoadOptions", recorded: Mapping[str, Any] | None = None) -> Path:
    """The file of ``checkpoint`` (a name or path; ``recorded`` as for :func:`checkpoint_file`); UsageError
    unless it is an ARE checkpoint."""
    path = checkpoint_file(checkpoint, options, recorded)
    profile = profile_of(path)
    if profile not in ("are-mix", "are-fusion"):
        raise UsageError(f"a fusion search needs an ARE checkpoint (are-mix or are-fusion); "
                         f"{checkpoint} is {profile}")
    return path
