"""SEMMA's per-dataset relation texts (spec §2.1).

Each file ``<llm>/<text_key>.json`` holds two keys:

* ``cleaned_relations``: raw relation name -> human-readable name;
* ``relation_descriptions``: raw relation name -> ``[description of r, description of r^-1]``.

The files are looked up under a local root, then in a download cache, both arguments (nothing here
reads the environment); when absent from both they are fetched from the public SEMMA repository
(pinned commit) into the cache, or only into memory when no cache is given. Downloads go through
:func:`are_model.data.download.fetch_url` (pooch; pinned sha256 in ``<cache>/pins.json``).
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..data.errors import DownloadError
from ..fileio import atomic_write_bytes

logger = logging.getLogger(__name__)

DEFAULT_LLM = "gpt-4o-2024-11-20"
#: Public home of the texts: github.com/arvindh75/semma, folder ``openrouter/descriptions/<llm>/``.
#: Pinned to a commit so that a download always yields the same bytes.
SEMMA_REPO = "arvindh75/semma"
SEMMA_COMMIT = "8d07addd39faf24115ebbfcc199959b434fbf514"
SEMMA_TEXT_URL = (
    "https://raw.githubusercontent.com/" + SEMMA_REPO + "/" + SEMMA_COMMIT
    + "/openrouter/descriptions/{llm}/{text_key}.json"
)
DOWNLOAD_TIMEOUT_S = 60.0

_CLEANED = "cleaned_relations"
_DESCRIPTIONS = "relation_descriptions"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RelationTextError(ValueError):
    """A relation-text file is malformed (bad JSON, missing key, wrong value type)."""


class RelationTextDownloadError(DownloadError, RuntimeError):
    """Relation texts that are not at hand and could not be downloaded: one line naming the URL and the reason.

    A :class:`~are_model.data.DownloadError` (``wanted``: ``<llm>/<text_key>.json``, the file's place under a
    text root, when a copy there would do), and a RuntimeError as this failure was before it had a class.
    """


@dataclass(frozen=True)
class RelationTexts:
    """The texts of one graph.

    Attributes:
        source: the local path (or, right after a download, the URL) the texts came from.
        cleaned: raw relation name -> cleaned, human-readable name.
        descriptions: raw relation name -> (description of r, description of r^-1).
    """

    source: str
    cleaned: dict[str, str]
    descriptions: dict[str, tuple[str, str]]

    def __contains__(self, name: object) -> bool:
        return name in self.cleaned and name in self.descriptions

    def __len__(self) -> int:
        return len(self.cleaned)


def parse_relation_texts(data: bytes | str, source: str) -> RelationTexts:
    """Validate and convert the JSON text of one file; errors name ``source`` and the offending key."""
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RelationTextError(f"{source}: malformed JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RelationTextError(f"{source}: top level must be a JSON object, got {type(obj).__name__}")
    for key in (_CLEANED, _DESCRIPTIONS):
        if key not in obj:
            raise RelationTextError(f"{source}: missing key '{key}'")
        if not isinstance(obj[key], dict):
            raise RelationTextError(f"{source}: key '{key}' must map to an object, got {type(obj[key]).__name__}")

    cleaned: dict[str, str] = {}
    for name, value in obj[_CLEANED].items():
        if not isinstance(value, str):
            raise RelationTextError(f"{source}: '{_CLEANED}' -> '{name}' must be a string, got {value!r}")
        cleaned[name] = value

    descriptions: dict[str, tuple[str, str]] = {}
    for name, value in obj[_DESCRIPTIONS].items():
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            raise RelationTextError(
                f"{source}: '{_DESCRIPTIONS}' -> '{name}' must be a list of 2 strings "
                f"[description of r, description of r^-1], got {value!r}"
            )
        descriptions[name] = (value[0], value[1])

    for name in cleaned:
        if name not in descriptions:
            raise RelationTextError(f"{source}: relation '{name}' is in '{_CLEANED}' but missing from '{_DESCRIPTIONS}'")
    for name in descriptions:
        if name not in cleaned:
            raise RelationTextError(f"{source}: relation '{name}' is in '{_DESCRIPTIONS}' but missing from '{_CLEANED}'")
    return RelationTexts(source=source, cleaned=cleaned, descriptions=descriptions)


def _check_name(kind: str, value: str) -> None:
    if not isinstance(value, str) or not _SAFE_NAME.match(value) or ".." in value:
        raise ValueError(f"invalid {kind} {value!r}: expected a plain file name such as 'FBNELL-FBNELL_v1'")


def _download(url: str, dest: Path | None, *, pins_folder: Path | None = None, pin_key: str | None = None,
              wanted: str | None = None, progress: bool = False) -> bytes:
    """The file at ``url``, checked, and written atomically to ``dest`` unless that is None.

    A failed download raises :class:`RelationTextDownloadError` carrying ``wanted`` (the file's place under a
    text root, ``<llm>/<text_key>.json``); a malformed pins file raises one with no ``wanted``.

    The download goes through :func:`are_model.data.download.fetch_url` (pooch): a file that does not
    parse as relation texts never lands, and the file is pinned in ``<pins_folder>/pins.json`` under
    ``pin_key`` on its first download and checked against that pin on every later one. Without ``dest``
    the file is fetched into a scratch folder, read and discarded (no pin: there is nowhere to keep it).
    """
    from ..data.download import FetchError, HashMismatchError, Pins, fetch_url

    def check(tmp: Path) -> None:  # never land a bad file
        parse_relation_texts(tmp.read_bytes(), url)

    logger.info("downloading relation texts %s -> %s", url, dest if dest is not None else "memory (no cache)")
    try:
        if dest is None:
            with tempfile.TemporaryDirectory(prefix="are-texts-") as scratch:
                landed = fetch_url(url, Path(scratch) / "texts.json", verify=check, timeout=DOWNLOAD_TIMEOUT_S,
                                   progress=progress)
                return landed.read_bytes()
        pins = Pins.beside(pins_folder) if pins_folder is not None else None
        fetch_url(url, dest, pins=pins, pin_key=pin_key, verify=check, timeout=DOWNLOAD_TIMEOUT_S, progress=progress)
        return dest.read_bytes()
    except (HashMismatchError, RelationTextError):
        raise
    except FetchError as exc:  # the URL and the reason in a few words
        raise RelationTextDownloadError(
            f"could not download relation texts from {exc.url}: {exc.reason} "
            "(offline? put the file under the text root as <llm>/<text_key>.json instead)", wanted=wanted) from None
    except DownloadError as exc:  # e.g. a malformed pins file
        raise RelationTextDownloadError(f"could not download relation texts from {url}: {exc}") from None
    except (OSError, ValueError) as exc:  # requests' errors are OSErrors; pooch raises ValueError too
        reason = " ".join(str(getattr(exc, "reason", None) or exc).split()) or type(exc).__name__
        raise RelationTextDownloadError(
            f"could not download relation texts from {url}: {reason} "
            "(offline? put the file under the text root as <llm>/<text_key>.json instead)", wanted=wanted) from None


def load_relation_texts(
    text_key: str,
    root: str | os.PathLike | None = None,
    *,
    llm: str = DEFAULT_LLM,
    download: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> RelationTexts:
    """Load ``<root>/<llm>/<text_key>.json``.

    Args:
        text_key: the dataset name of spec §2.1, e.g. ``"FBNELL-FBNELL_v1"``, ``"CoDExMedium"``.
        root: folder holding ``<llm>/``, or None (then only the cache and the download are tried).
        llm: sub-folder naming the LLM that wrote the texts.
        download: when the file is neither under ``root`` nor in the cache, fetch it from the SEMMA
            repository (pinned commit :data:`SEMMA_COMMIT`) into the cache, atomically.
        cache_dir: download cache holding ``<llm>/<text_key>.json``, or None: no cache (a download
            is then kept in memory only). Downloads into it are pinned in ``<cache_dir>/pins.json``
            (key ``<llm>/<text_key>.json``) on first download and checked against the pin afterwards.
        progress: pooch's progress bar on stderr while downloading.

    Raises:
        RelationTextError: malformed JSON or a missing/ill-typed key (the message names file and key).
        FileNotFoundError: the file is absent and ``download`` is False (also when neither ``root``
            nor ``cache_dir`` is given: the message says so).
        RelationTextDownloadError: the download failed (a DownloadError and a RuntimeError; its ``wanted`` is
            ``<llm>/<text_key>.json``).
        HashMismatchError: the downloaded file is not the one pinned in ``<cache_dir>/pins.json`` (one
            line naming the file and both sha256; nothing is written).
    """
    _check_name("text_key", text_key)
    _check_name("llm", llm)
    if root is None and cache_dir is None and not download:
        raise FileNotFoundError(
            f"relation texts '{text_key}' ({llm}): no text root and no cache folder given, and downloading is off; "
            "pass the folder holding <llm>/<text_key>.json as root (the command line: --text-root or ARE_TEXT_ROOT)")

    searched: list[str] = []
    if root is not None:
        local = Path(root) / llm / f"{text_key}.json"
        searched.append(str(local))
        if local.is_file():
            return parse_relation_texts(local.read_bytes(), str(local))

    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / llm / f"{text_key}.json"
        searched.append(str(cached))
        if cached.is_file():
            return parse_relation_texts(cached.read_bytes(), str(cached))

    if not download:
        raise FileNotFoundError(f"relation texts '{text_key}' ({llm}) not found; looked at: {', '.join(searched)}")
    url = SEMMA_TEXT_URL.format(llm=llm, text_key=text_key)
    data = _download(url, cached, pins_folder=None if cache_dir is None else Path(cache_dir),
                     pin_key=f"{llm}/{text_key}.json", wanted=f"{llm}/{text_key}.json", progress=progress)
    return parse_relation_texts(data, url)
