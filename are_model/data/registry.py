"""Registry of the public knowledge-graph benchmarks (spec §7.3) and name resolution.

Each :class:`DatasetSpec` says which loader family parses the dataset, where its raw files live under a
data root (``<root>/<Class>/<version>/raw/`` or ``<root>/<Class>/raw/``), under which local names, and
from which public URL (optionally a member of a zip archive) each file can be fetched.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UnknownDatasetError

__all__ = ["RawFile", "DatasetSpec", "DATASETS", "resolve_dataset_name", "get_spec"]

# loader families (spec §7.2)
TRANSDUCTIVE = "transductive"  # generic first-appearance vocabulary over train, valid, test
FB15K237 = "fb15k237"  # ids fixed by entities.dict / relations.dict
WN18RR = "wn18rr"  # alphabetical relations, per-file heads-then-tails entities, (src, dst) sort
GRAIL = "grail"  # GraIL inductive: shared relation vocabulary, test = valid_ind + test_ind
INDUCTIVE = "inductive"  # ILPC / InGram / HM / MTDEA / WikiTopics

# filter modes for ranking (spec §6.6)
FILTER_ALL_TARGETS = "all_targets"  # transductive: train + valid + test targets
FILTER_SPLIT_GRAPH = "split_graph"  # split's fact graph + the split's own targets
FILTER_INFERENCE_ALL = "inference_all"  # inference graph + valid + test targets (ILPC, InGram)


@dataclass(frozen=True)
class RawFile:
    """One raw file of a dataset.

    Attributes:
        role: what the loader reads it as (``train``, ``valid``, ``test``, ``facts``, ``entities``,
            ``relations``, ``inf_graph``, ``inf_valid``, ``inf_test``, ``relation_names``).
        local_name: the file name under the dataset's raw folder.
        url: the public URL to fetch it from (the archive URL when ``member`` is set).
        member: path of the file inside the zip archive at ``url``; ``None`` for a plain file.
        optional: the dataset loads without it (only extra metadata, e.g. HM relation names).
    """

    role: str
    local_name: str
    url: str
    member: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry.

    Attributes:
        family: loader family (``transductive``, ``fb15k237``, ``wn18rr``, ``grail``, ``inductive``).
        class_name: the ULTRA dataset class name, e.g. ``"FB15k237Inductive"``.
        version: the version string (``"v1"``, ``"small"``, ``"FBNELL_v1"``...) or ``None``.
        files: the raw files, in reading order.
        delimiter: ``None`` = split lines on any whitespace; otherwise the exact field separator.
        column_order: ``"hrt"`` (head, relation, tail) or ``"htr"`` (SparserKG dumps).
        valid_on_inference: inductive family only: valid triples live on the inference graph.
        limit_valid_vocab: inductive family only: drop valid triples with a head, tail or relation
            unseen in the training graph (MTDEA, WikiTopics).
        filter_mode: which triples count as known-true in filtered ranking (spec §6.6).
    """

    family: str
    class_name: str
    version: str | None
    files: tuple[RawFile, ...]
    delimiter: str | None = None
    column_order: str = "hrt"
    valid_on_inference: bool = True
    limit_valid_vocab: bool = False
    filter_mode: str = FILTER_ALL_TARGETS

    @property
    def name(self) -> str:
        """Canonical name ``Class[:version]``."""
        return self.class_name if self.version is None else f"{self.class_name}:{self.version}"

    @property
    def text_key(self) -> str:
        """Relation-text file stem (spec §2.1): ``Class`` or ``Class-version``."""
        return self.class_name if self.version is None else f"{self.class_name}-{self.version}"

    @property
    def setting(self) -> str:
        """``"transductive"`` or ``"inductive"``."""
        return "transductive" if self.family in (TRANSDUCTIVE, FB15K237, WN18RR) else "inductive"

    def raw_dir(self, root: str | os.PathLike) -> Path:
        """``<root>/<Class>/<version>/raw`` (or ``<root>/<Class>/raw`` without a version)."""
        base = Path(root) / self.class_name
        return (base if self.version is None else base / self.version) / "raw"

    def file(self, role: str) -> RawFile:
        """The raw file with ``role``; ``KeyError`` naming the dataset when absent."""
        for raw in self.files:
            if raw.role == role:
                return raw
        raise KeyError(f"{self.name} has no raw file with role '{role}'")

    def has_role(self, role: str) -> bool:
        return any(raw.role == role for raw in self.files)


# --------------------------------------------------------------------------------------------------
# URLs (spec §7.3)

_GH = "https://raw.githubusercontent.com"
_MTDEA_ZIP = "https://reltrans.s3.us-east-2.amazonaws.com/MTDEA_data.zip"
_SPARSER_ZIP = f"{_GH}/THU-KEG/DacKGR/master/data.zip"
_ARISTO_ZIP = "https://zenodo.org/record/5942560/files/aristo-v4.zip"
_OOKB_VOCAB = f"{_GH}/takuo-h/GNN-for-OOKB/master/2-OOKB-setting/datasets/OOKB/vocab"


def _plain(roles_names_urls: list[tuple[str, str, str]]) -> tuple[RawFile, ...]:
    return tuple(RawFile(role, local, url) for role, local, url in roles_names_urls)


def _split3(base: str, suffix: str = ".txt", prefix: str = "") -> tuple[RawFile, ...]:
    return _plain([(s, f"{s}.txt", f"{base}/{prefix}{s}{suffix}") for s in ("train", "valid", "test")])


def _transductive() -> list[DatasetSpec]:
    fb = f"{_GH}/MichSchli/RelationPrediction/master/data/FB-Toutanova"
    specs = [
        DatasetSpec(FB15K237, "FB15k237", None, _plain(
            [("entities", "entities.dict", f"{fb}/entities.dict"), ("relations", "relations.dict", f"{fb}/relations.dict")]
        ) + _split3(fb), delimiter="\t"),
        DatasetSpec(WN18RR, "WN18RR", None,
                    _split3(f"{_GH}/villmow/datasets_knowledge_embedding/master/WN18RR/original")),
        DatasetSpec(TRANSDUCTIVE, "NELL995", None, _plain(
            [(s, f"{s}.txt", f"{_GH}/LARS-research/RED-GNN/main/transductive/data/nell/{s}.txt")
             for s in ("facts", "train", "valid", "test")])),
        DatasetSpec(TRANSDUCTIVE, "ConceptNet100k", None,
                    _split3(f"{_GH}/guojiapub/BiQUE/master/src_data/conceptnet-100k", suffix=""), delimiter="\t"),
        DatasetSpec(TRANSDUCTIVE, "DBpedia100k", None,
                    _split3(f"{_GH}/iieir-km/ComplEx-NNE_AER/master/datasets/DB100K", prefix="_")),
        DatasetSpec(TRANSDUCTIVE, "YAGO310", None,
                    _split3(f"{_GH}/DeepGraphLearning/KnowledgeGraphEmbedding/master/data/YAGO3-10")),
        DatasetSpec(TRANSDUCTIVE, "Hetionet", None, _plain([
            ("train", "train.txt", "https://www.dropbox.com/s/y47bt9oq57h6l5k/train.txt?dl=1"),
            ("valid", "valid.txt", "https://www.dropbox.com/s/a0pbrx9tz3dgsff/valid.txt?dl=1"),
            ("test", "test.txt", "https://www.dropbox.com/s/4dhrvg3fyq5tnu4/test.txt?dl=1"),
        ])),
        DatasetSpec(TRANSDUCTIVE, "AristoV4", None, tuple(
            RawFile(s, f"{s}.txt", _ARISTO_ZIP, member=s) for s in ("train", "valid", "test")), delimiter="\t"),
    ]
    for cls, size in (("CoDExSmall", "s"), ("CoDExMedium", "m"), ("CoDExLarge", "l")):
        specs.append(DatasetSpec(TRANSDUCTIVE, cls, None,
                                 _split3(f"{_GH}/tsafavi/codex/master/data/triples/codex-{size}")))
    for cls, folder in (("WDsinger", "WD-singer"), ("NELL23k", "NELL23K"), ("FB15k237_10", "FB15K-237-10"),
                        ("FB15k237_20", "FB15K-237-20"), ("FB15k237_50", "FB15K-237-50")):
        files = tuple(RawFile(s, f"{s}.txt", _SPARSER_ZIP, member=f"data/{folder}/{up}.triples")
                      for s, up in (("train", "train"), ("valid", "dev"), ("test", "test")))
        specs.append(DatasetSpec(TRANSDUCTIVE, cls, None, files, delimiter="\t", column_order="htr"))
    return specs


def _grail() -> list[DatasetSpec]:
    specs = []
    for cls, prefix in (("FB15k237Inductive", "fb237"), ("WN18RRInductive", "WN18RR"), ("NELLInductive", "nell")):
        for version in ("v1", "v2", "v3", "v4"):
            trans = f"{_GH}/kkteru/grail/master/data/{prefix}_{version}"
            ind = f"{trans}_ind"
            files = _plain([
                ("train", "train.txt", f"{trans}/train.txt"),
                ("valid", "valid.txt", f"{trans}/valid.txt"),
                ("inf_graph", "train_ind.txt", f"{ind}/train.txt"),
                ("inf_valid", "valid_ind.txt", f"{ind}/valid.txt"),
                ("inf_test", "test_ind.txt", f"{ind}/test.txt"),
            ])
            specs.append(DatasetSpec(GRAIL, cls, version, files, filter_mode=FILTER_SPLIT_GRAPH))
    return specs


def _inductive4(cls: str, version: str, urls: tuple[str, str, str, str], valid_name: str,
                member: tuple[str, str, str, str] | None = None, **kwargs) -> DatasetSpec:
    roles = ("train", "inf_graph", "valid", "test")
    names = ("transductive_train.txt", "inference_graph.txt", valid_name, "inf_test.txt")
    files = tuple(RawFile(role, name, url, member=None if member is None else member[i])
                  for i, (role, name, url) in enumerate(zip(roles, names, urls)))
    extra = kwargs.pop("extra_files", ())
    return DatasetSpec(INDUCTIVE, cls, version, files + tuple(extra), **kwargs)


def _inductive() -> list[DatasetSpec]:
    specs = []
    for size in ("small", "large"):
        base = f"{_GH}/pykeen/ilpc2022/master/data/{size}"
        urls = tuple(f"{base}/{f}.txt" for f in ("train", "inference", "inference_validation", "inference_test"))
        specs.append(_inductive4("ILPC2022", size, urls, "inf_valid.txt", filter_mode=FILTER_INFERENCE_ALL))
    for cls, prefix, versions in (("FBIngram", "FB", ("25", "50", "75", "100")),
                                  ("WKIngram", "WK", ("25", "50", "75", "100")),
                                  ("NLIngram", "NL", ("0", "25", "50", "75", "100"))):
        for version in versions:
            base = f"{_GH}/bdi-lab/InGram/master/data/{prefix}-{version}"
            urls = tuple(f"{base}/{f}.txt" for f in ("train", "msg", "valid", "test"))
            specs.append(_inductive4(cls, version, urls, "inf_valid.txt", filter_mode=FILTER_INFERENCE_ALL))
    for version, folder in (("1k", "Hamaguchi-BM_both-1000"), ("3k", "Hamaguchi-BM_both-3000"),
                            ("5k", "Hamaguchi-BM_both-5000"), ("indigo", "INDIGO-BM")):
        base = f"{_GH}/shuwen-liu-ox/INDIGO/master/data/{folder}"
        urls = (f"{base}/train/train.txt", f"{base}/test/test-graph.txt",
                f"{base}/train/valid.txt", f"{base}/test/test-fact.txt")
        # Hamaguchi files hold integer ids; the OOKB vocabulary maps relation ids to WordNet names,
        # which key the relation texts. INDIGO-BM already holds Freebase relation paths.
        extra = () if version == "indigo" else (
            RawFile("relation_names", "relation_vocab.txt", f"{_OOKB_VOCAB}/relation", optional=True),)
        specs.append(_inductive4("HM", version, urls, "inf_valid.txt", valid_on_inference=False,
                                 filter_mode=FILTER_SPLIT_GRAPH, extra_files=extra))
    mtdea = (("FBNELL", "FBNELL", "%s", ("FBNELL_v1",)),
             ("Metafam", "Metafam", "%s", ("Metafam",)),
             ("WikiTopicsMT1", "WikiTopics-MT1", "wikidata_%sv1", ("mt", "health", "tax")),
             ("WikiTopicsMT2", "WikiTopics-MT2", "wikidata_%sv1", ("mt2", "org", "sci")),
             ("WikiTopicsMT3", "WikiTopics-MT3", "wikidata_%sv2", ("mt3", "art", "infra")),
             ("WikiTopicsMT4", "WikiTopics-MT4", "wikidata_%sv2", ("mt4", "sci", "health")))
    for cls, zip_dir, prefix, versions in mtdea:
        for version in versions:
            folder = prefix % version
            # zip layout: <folder>-trans/{train,valid}.txt and <folder>-ind/{observe,test}.txt
            parts = (("trans", "train"), ("ind", "observe"), ("trans", "valid"), ("ind", "test"))
            members = tuple(f"MTDEA_datasets/{zip_dir}/{folder}-{part}/{f}.txt" for part, f in parts)
            specs.append(_inductive4(cls, version, (_MTDEA_ZIP,) * 4, "transductive_valid.txt", member=members,
                                     valid_on_inference=False, limit_valid_vocab=True,
                                     filter_mode=FILTER_SPLIT_GRAPH))
    return specs


def _build() -> dict[str, DatasetSpec]:
    out: dict[str, DatasetSpec] = {}
    for spec in _transductive() + _grail() + _inductive():
        if spec.name in out:
            raise RuntimeError(f"duplicate dataset name {spec.name}")
        out[spec.name] = spec
    return out


DATASETS: dict[str, DatasetSpec] = _build()


def _lookup_table() -> dict[str, str]:
    """Lower-cased accepted spellings -> canonical name."""
    table: dict[str, str] = {}
    versions_of: dict[str, list[str]] = {}
    for name, spec in DATASETS.items():
        table[name.lower()] = name
        table[spec.text_key.lower()] = name
        if spec.version is not None:
            table[f"{spec.class_name}/{spec.version}".lower()] = name
        versions_of.setdefault(spec.class_name, []).append(name)
    for cls, names in versions_of.items():
        if len(names) == 1:  # "FBNELL" -> "FBNELL:FBNELL_v1", "Metafam" -> "Metafam:Metafam"
            table.setdefault(cls.lower(), names[0])
    return table


_LOOKUP = _lookup_table()


def resolve_dataset_name(name: str) -> str:
    """Canonical ``Class[:version]`` for ``name``.

    Accepts the canonical form in any case, ``Class-version`` (the text key), ``Class/version`` and, for
    a class with a single version, the bare class name (``"FBNELL"`` -> ``"FBNELL:FBNELL_v1"``).

    Raises:
        UnknownDatasetError: one line listing close matches.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownDatasetError(f"dataset name must be a non-empty string, got {name!r}")
    key = name.strip().lower()
    if key in _LOOKUP:
        return _LOOKUP[key]
    close = difflib.get_close_matches(key, list(_LOOKUP), n=5, cutoff=0.6)
    suggestions = sorted({_LOOKUP[c] for c in close})
    if not suggestions:  # e.g. a bare versioned class name: "ILPC2022" -> its versions
        suggestions = sorted(n for n in DATASETS if n.lower().startswith(key))
    hint = f"; close matches: {', '.join(suggestions)}" if suggestions else ""
    raise UnknownDatasetError(
        f"unknown dataset {name!r}{hint} (known: {len(DATASETS)} names in are_model.data.DATASETS)")


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` (resolved with :func:`resolve_dataset_name`)."""
    return DATASETS[resolve_dataset_name(name)]
