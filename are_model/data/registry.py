"""Registry of the public knowledge-graph benchmarks (spec §7.3) and name resolution.

Each :class:`DatasetSpec` says which loader family parses the dataset, where its raw files live under a
data root (``<root>/<Class>/<version>/raw/`` or ``<root>/<Class>/raw/``), under which local names, and
from which public URL (optionally a member of a zip archive) each file can be fetched.

Every GitHub URL names a commit, never a branch (:data:`REPOSITORIES`: the commit each repository is read at;
the three repositories whose full commit is not known here keep their branch, with the reason), so a download
cannot drift when a branch moves or a folder is renamed.

Tables of data sit next to the specs:

* :data:`GROUPS`: the benchmark's four groups of graphs (57 in all) as the ULTRA / SEMMA / ARE tables
  report them; a registered dataset outside them is in group ``"other"`` (:attr:`DatasetSpec.group`);
* :data:`SHA256`: the pinned sha256 of each raw file whose public bytes are known, keyed by its path
  relative to the data root (``FB15k237Inductive/v1/raw/train_ind.txt``); a download of such a file is
  refused unless its bytes match (:mod:`are_model.data.download`). A file without an entry is pinned
  on its first download instead;
* :data:`COUNTS` and :data:`CITATIONS`: each measured dataset's entities, relations and triples per file
  (:mod:`are_model.data.counts`) and each family's publication, for the catalogue.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UnknownDatasetError

__all__ = ["RawFile", "DatasetSpec", "Repository", "REPOSITORIES", "DATASETS", "GROUPS", "GROUP_ORDER", "SHA256", "COUNTS", "CITATIONS",
           "resolve_dataset_name", "get_spec"]

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

    @property
    def group(self) -> str:
        """The benchmark group (:data:`GROUPS`): ``pretraining``, ``transductive``, ``inductive_e``,
        ``inductive_er``, or ``other`` for a registered dataset outside the benchmark's 57 graphs."""
        return _GROUP_OF.get(self.name, OTHER_GROUP)

    def relpath(self, raw: RawFile) -> str:
        """``raw``'s path relative to a data root, with ``/``: ``<Class>[/<version>]/raw/<local_name>``."""
        parts = [self.class_name] + ([] if self.version is None else [self.version]) + ["raw", raw.local_name]
        return "/".join(parts)

    def sha256(self, raw: RawFile) -> str | None:
        """The pinned sha256 of ``raw`` (:data:`SHA256`), or None when its public bytes are not known here."""
        return SHA256.get(self.relpath(raw))


# --------------------------------------------------------------------------------------------------
# URLs (spec §7.3)

_GH = "https://raw.githubusercontent.com"
_MTDEA_ZIP = "https://reltrans.s3.us-east-2.amazonaws.com/MTDEA_data.zip"
_ARISTO_ZIP = "https://zenodo.org/record/5942560/files/aristo-v4.zip"


@dataclass(frozen=True)
class Repository:
    """A GitHub repository the registry downloads from, and the commit it downloads at.

    Attributes:
        commit: the full commit hash every URL of this repository names (a URL at a commit serves the same bytes
            forever, so a download cannot drift when a branch moves or a folder is renamed); None where no full
            commit is known here.
        branch: the branch a URL names when ``commit`` is None (only then).
        reason: why ``commit`` is None (empty otherwise).
    """

    commit: str | None
    branch: str = ""
    reason: str = ""


#: Every GitHub repository of the registry and its commit. The commits are those whose blobs the files of
#: ../shared/datasets are (PROVENANCE.md, SHA256SUMS), or, where no file of a repository is there, the commit
#: at which the path is known to exist. A repository without a known full commit keeps its branch and says why:
#: no commit is invented.
REPOSITORIES: dict[str, Repository] = {
    "MichSchli/RelationPrediction": Repository("98dcdf4eaa41b9ccb65b17b76e2d370e6b9b5e3b"),
    "villmow/datasets_knowledge_embedding": Repository("9e392453d6804d1f51c13e5650ae58ed48b638d5"),
    "tsafavi/codex": Repository("3132e426c2a6b643b70bad679905a3a6270be440"),
    "kkteru/grail": Repository("2a3dffa719518e7e6250e355a2fb37cd932de91e"),
    "pykeen/ilpc2022": Repository("3d0166dc78a91c6f9075e988f7ddaa68b10f3704"),
    "bdi-lab/InGram": Repository("f2554dd0c684bad71d3e01d534f2f7814cf28644"),
    "shuwen-liu-ox/INDIGO": Repository("ad1b20bb290d28cf8a19357ea059077248e25d45"),
    "takuo-h/GNN-for-OOKB": Repository("c70d37c03a710dbfda2336a55356c6841c7419ad"),
    "guojiapub/BiQUE": Repository("548de69f803f541b30fc4ab27c6d25632f1a7bf7"),
    # RED-GNN moved transductive/data/nell/ to Static/transductive/data/nell/ in 0b6f230; the old path (the
    # files ULTRA's NELL995 reads) exists up to this commit
    "LARS-research/RED-GNN": Repository("5e2ccadc49e7ab7feca251961c12b674cc8c501f"),
    "iieir-km/ComplEx-NNE_AER": Repository(
        None, "master", "no full commit known here: PROVENANCE.md names only the short hash 47fb01b, and "
                        "the DB100K training file is not in ../shared/datasets to check a pin against"),
    "DeepGraphLearning/KnowledgeGraphEmbedding": Repository(
        None, "master", "no full commit known here: PROVENANCE.md names only the short hash 2e440e0, and "
                        "the YAGO3-10 training file is not in ../shared/datasets to check a pin against"),
    "THU-KEG/DacKGR": Repository(
        None, "master", "no full commit known here: PROVENANCE.md names only the short hash 2a0fe7c, and "
                        "data.zip is not in ../shared/datasets to check a pin against"),
}


def _github(repository: str, path: str) -> str:
    """The raw.githubusercontent.com URL of ``path`` in ``repository`` at its commit (:data:`REPOSITORIES`; its
    branch where the commit is None)."""
    repo = REPOSITORIES[repository]
    return f"{_GH}/{repository}/{repo.commit or repo.branch}/{path}"


_SPARSER_ZIP = _github("THU-KEG/DacKGR", "data.zip")
_OOKB_VOCAB = _github("takuo-h/GNN-for-OOKB", "2-OOKB-setting/datasets/OOKB/vocab")


def _plain(roles_names_urls: list[tuple[str, str, str]]) -> tuple[RawFile, ...]:
    return tuple(RawFile(role, local, url) for role, local, url in roles_names_urls)


def _split3(base: str, suffix: str = ".txt", prefix: str = "") -> tuple[RawFile, ...]:
    return _plain([(s, f"{s}.txt", f"{base}/{prefix}{s}{suffix}") for s in ("train", "valid", "test")])


def _transductive() -> list[DatasetSpec]:
    fb = _github("MichSchli/RelationPrediction", "data/FB-Toutanova")
    specs = [
        DatasetSpec(FB15K237, "FB15k237", None, _plain(
            [("entities", "entities.dict", f"{fb}/entities.dict"), ("relations", "relations.dict", f"{fb}/relations.dict")]
        ) + _split3(fb), delimiter="\t"),
        DatasetSpec(WN18RR, "WN18RR", None,
                    _split3(_github("villmow/datasets_knowledge_embedding", "WN18RR/original"))),
        DatasetSpec(TRANSDUCTIVE, "NELL995", None, _plain(
            [(s, f"{s}.txt", _github("LARS-research/RED-GNN", f"transductive/data/nell/{s}.txt"))
             for s in ("facts", "train", "valid", "test")])),
        DatasetSpec(TRANSDUCTIVE, "ConceptNet100k", None,
                    _split3(_github("guojiapub/BiQUE", "src_data/conceptnet-100k"), suffix=""), delimiter="\t"),
        DatasetSpec(TRANSDUCTIVE, "DBpedia100k", None,
                    _split3(_github("iieir-km/ComplEx-NNE_AER", "datasets/DB100K"), prefix="_")),
        DatasetSpec(TRANSDUCTIVE, "YAGO310", None,
                    _split3(_github("DeepGraphLearning/KnowledgeGraphEmbedding", "data/YAGO3-10"))),
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
                                 _split3(_github("tsafavi/codex", f"data/triples/codex-{size}"))))
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
            trans = _github("kkteru/grail", f"data/{prefix}_{version}")
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
        base = _github("pykeen/ilpc2022", f"data/{size}")
        urls = tuple(f"{base}/{f}.txt" for f in ("train", "inference", "inference_validation", "inference_test"))
        specs.append(_inductive4("ILPC2022", size, urls, "inf_valid.txt", filter_mode=FILTER_INFERENCE_ALL))
    for cls, prefix, versions in (("FBIngram", "FB", ("25", "50", "75", "100")),
                                  ("WKIngram", "WK", ("25", "50", "75", "100")),
                                  ("NLIngram", "NL", ("0", "25", "50", "75", "100"))):
        for version in versions:
            base = _github("bdi-lab/InGram", f"data/{prefix}-{version}")
            urls = tuple(f"{base}/{f}.txt" for f in ("train", "msg", "valid", "test"))
            specs.append(_inductive4(cls, version, urls, "inf_valid.txt", filter_mode=FILTER_INFERENCE_ALL))
    for version, folder in (("1k", "Hamaguchi-BM_both-1000"), ("3k", "Hamaguchi-BM_both-3000"),
                            ("5k", "Hamaguchi-BM_both-5000"), ("indigo", "INDIGO-BM")):
        base = _github("shuwen-liu-ox/INDIGO", f"data/{folder}")
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

# --------------------------------------------------------------------------------------------------
# The benchmark's groups: the 57 graphs of ULTRA (Galkin et al., "Towards Foundation Models for Knowledge
# Graph Reasoning", ICLR 2024, arXiv:2310.04562) in the groups its tables and SEMMA's / ARE's report; means
# are taken over the graphs of a group. Every registered dataset outside them is in OTHER_GROUP.

OTHER_GROUP = "other"
GROUPS: dict[str, tuple[str, ...]] = {
    "pretraining": ("FB15k237", "WN18RR", "CoDExMedium"),
    "transductive": ("CoDExSmall", "CoDExLarge", "NELL995", "DBpedia100k", "ConceptNet100k", "NELL23k", "YAGO310",
                     "Hetionet", "WDsinger", "AristoV4", "FB15k237_10", "FB15k237_20", "FB15k237_50"),
    "inductive_e": tuple(f"{cls}:v{i}" for cls in ("FB15k237Inductive", "WN18RRInductive", "NELLInductive")
                         for i in range(1, 5))
    + ("ILPC2022:small", "ILPC2022:large", "HM:1k", "HM:3k", "HM:5k", "HM:indigo"),
    "inductive_er": tuple(f"FBIngram:{v}" for v in ("25", "50", "75", "100"))
    + tuple(f"WKIngram:{v}" for v in ("25", "50", "75", "100"))
    + tuple(f"NLIngram:{v}" for v in ("0", "25", "50", "75", "100"))
    + ("WikiTopicsMT1:tax", "WikiTopicsMT1:health", "WikiTopicsMT2:org", "WikiTopicsMT2:sci",
       "WikiTopicsMT3:art", "WikiTopicsMT3:infra", "WikiTopicsMT4:sci", "WikiTopicsMT4:health",
       "Metafam:Metafam", "FBNELL:FBNELL_v1"),
}
#: The groups in the order the tables list them, then OTHER_GROUP.
GROUP_ORDER: tuple[str, ...] = tuple(GROUPS) + (OTHER_GROUP,)


def _group_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for group, names in GROUPS.items():
        for name in names:
            if name not in DATASETS:
                raise RuntimeError(f"group {group}: {name} is not a registered dataset")
            if name in index:
                raise RuntimeError(f"{name} is in two groups: {index[name]} and {group}")
            index[name] = group
    return index


_GROUP_OF = _group_index()

# --------------------------------------------------------------------------------------------------
# Pinned sha256 of raw files, keyed by the path relative to the data root (DatasetSpec.relpath). These
# are the files of ../shared/datasets/SHA256SUMS that are byte-identical to the public file at the
# registry's URL (PROVENANCE.md): the first batch (GraIL, ILPC2022, CoDEx, FB15k237, WN18RR) and the second
# (InGram NL-25/75/100 and WK-50/75/100, HM 3k/5k with the OOKB relation vocabulary, ConceptNet100k), each at
# the commit REPOSITORIES names. Left out: FB15k237/raw/train.txt (a reconstruction, not the released
# bytes) and the MTDEA files of FBNELL and Metafam (copied from the SEMMA repository, not checked against
# the MTDEA archive the registry downloads); they are pinned on first download like every other file.

SHA256: dict[str, str] = {
    "FB15k237Inductive/v1/raw/train_ind.txt": "049829f7047ecf0e0bff0769efca31bc7f811f760c4ffcb20a5680f789b00c61",
    "FB15k237Inductive/v1/raw/valid_ind.txt": "ac817123c4177ef46b08a3802380a355282b99d4283c43474c9dd91c082107dd",
    "FB15k237Inductive/v1/raw/test_ind.txt": "c79d39372be30a3864cfe5094b3022f38b57d88c351dbbfa2d9e7f3368ac23aa",
    "FB15k237Inductive/v1/raw/train.txt": "74ef3120fe38a22e5131064d23108b88a8d339496057fa8467d80dcda8f1cec1",
    "FB15k237Inductive/v1/raw/valid.txt": "d4c2698d7dc36c0dc39ffb3d810caeafe530d779bf9f6451fac2027f41c2ff6d",
    "FB15k237Inductive/v2/raw/train_ind.txt": "6756f8d4aa688bc1a18c1106117a7fde94e0469f223f5d00954846afce471e54",
    "FB15k237Inductive/v2/raw/valid_ind.txt": "2c3b4430cac899b868c9dd22ece0eae830ca62c8a6c0bf8610c670bbeaf7d6d8",
    "FB15k237Inductive/v2/raw/test_ind.txt": "17c16e008cb6dfdc67ef0f375aab0a8fee2b087c7d687a72f5217b789d0c4a10",
    "FB15k237Inductive/v2/raw/train.txt": "542f81af46d6727979278643105ba7c236dd8b29ee5d9962e3c3fa295ab8869c",
    "FB15k237Inductive/v2/raw/valid.txt": "59e07dcb883b28bb35585ba95576e4ebb2a71ddbc906119abcc4c87b28198d0c",
    "FB15k237Inductive/v3/raw/train_ind.txt": "2805f9237816f5bb5bb1ff1fbc3d37cc0beb99047bef3a6bd82cc1f6947e8525",
    "FB15k237Inductive/v3/raw/valid_ind.txt": "76f7691aa597d43d704af047d01a5f4d266c02733c52a5c340c2bea4a85dd281",
    "FB15k237Inductive/v3/raw/test_ind.txt": "7dbd4d74210ffd5029d95327639f83c3b46f8bd4ee3571e619812b367d0880da",
    "FB15k237Inductive/v3/raw/train.txt": "0f27b7f00d3e34964450c22445d17f7612d12d7c382caa3317f45bfe7465f299",
    "FB15k237Inductive/v3/raw/valid.txt": "8b034e73fe64af9c7baf1e12704a94e7e9a9e6b9242feb498c69ebd65bccf269",
    "FB15k237Inductive/v4/raw/train_ind.txt": "ef55c03e05d5eeeec97fe2030e92bc36bd5ee9311b770ae0a3fd812982686e8d",
    "FB15k237Inductive/v4/raw/valid_ind.txt": "0a237c20719267449388e1d43995ccf67da5a3c82085ba5d2e3996c77dc73921",
    "FB15k237Inductive/v4/raw/test_ind.txt": "8e6e19adb9b154348897bf896b5305a76126bc4d79a21705ea47e4efce2d84f3",
    "FB15k237Inductive/v4/raw/train.txt": "b9fa0f2650a1ab7687e21e0aec24bb51c0b0eacf0d88c8780c03c9b201b9148d",
    "FB15k237Inductive/v4/raw/valid.txt": "d99dedcd13bc0cd338a299a895685b66f15e0b7ed42477d40f1ad1a65ce6d483",
    "WN18RRInductive/v1/raw/train_ind.txt": "7d1b73c5994e9aa816b34e33ee10707656803ba6b8a0f6066cae7ddc04f87553",
    "WN18RRInductive/v1/raw/valid_ind.txt": "cfa28b9d75dbab17ea82a9443a5bf8acb738e60267cc63f8a221b38967e1d238",
    "WN18RRInductive/v1/raw/test_ind.txt": "6df8c00a2e0cf1a4b484ac638c081198926fcbc411ce2e12ccc79d432eead269",
    "WN18RRInductive/v1/raw/train.txt": "4cc72d4fdcc8206e208e1f59f3c778be5de4a68cfe76776d15245b0d2c08d396",
    "WN18RRInductive/v1/raw/valid.txt": "5cebd29da8ada35ac73b6875329884cdf83943ddea454e9f70cc43b423ea479b",
    "WN18RRInductive/v2/raw/train_ind.txt": "8dc9bb459e6306737a083b15698ed1420ce8dc57e27f8a42ab7b90c26dfc5154",
    "WN18RRInductive/v2/raw/valid_ind.txt": "fc32db7cb56dba0ff05bf57efd8a2279f0825dc6ae763c9d32281a9a1373c09a",
    "WN18RRInductive/v2/raw/test_ind.txt": "3b3942ce7665f1a6667721f5eab946bde79a5929f1996c5af16e0b092a5084bb",
    "WN18RRInductive/v2/raw/train.txt": "a14a902df92e32f4aeb65761560072a007ae915308bb8a7a03c58dc1e9c2a9ad",
    "WN18RRInductive/v2/raw/valid.txt": "2d3f6703d87fe1605f636736f0e848d9750b8e1593bd41101554ecbb41a1d836",
    "WN18RRInductive/v3/raw/train_ind.txt": "85b817c364d097793a4b0969fa49d20167345256bf812c978bff381ad3aef492",
    "WN18RRInductive/v3/raw/valid_ind.txt": "c0876dafce4cef4c6ef1aa53457fb9f4e40a31a8bf9edbaf05389bfe5ba26f43",
    "WN18RRInductive/v3/raw/test_ind.txt": "efad21a11c1cf26a1a4a5fcf7a64c585ccde3c4f8f71de3a00a995d9e8c9938d",
    "WN18RRInductive/v3/raw/train.txt": "324a2b04b621bfe8d2dd98ad1c585fbc7efefb1548e92b5d10afc08733286aa7",
    "WN18RRInductive/v3/raw/valid.txt": "7f008df4879d36ef70a5c5eb58a7c87488c3f1fea606ab484e66a1aff89b0cbc",
    "WN18RRInductive/v4/raw/train_ind.txt": "d5608132dab5873666e249c1de9412608c0e0b2cc0d154b0ffceff1ce067cc03",
    "WN18RRInductive/v4/raw/valid_ind.txt": "0928c5cb528ebde49a3be13f3df4d863f95312c247854bea556c65008cc5b54c",
    "WN18RRInductive/v4/raw/test_ind.txt": "10ccff353175e6eaaff0b3d7ef7931115845868653ddba0ba6fb5c8dfdab6364",
    "WN18RRInductive/v4/raw/train.txt": "5eace2cdfdffb2b19c6d27c7527ae79b8f4b1b3fb712d9a5049243a13edb95ca",
    "WN18RRInductive/v4/raw/valid.txt": "ca1568ca934bbf5ccfeabb3a67010968433c0e5bc1df9b0d3d48279023abd7bd",
    "NELLInductive/v1/raw/train_ind.txt": "b0bfb66f65d70586a26703eb022926a75c1f234d1bcdeafe2e8d387be41291ee",
    "NELLInductive/v1/raw/valid_ind.txt": "297c1c82c944bd76255f6ad4cc22f5ecbb23c9daac366e8991b5770ca0dfb8fc",
    "NELLInductive/v1/raw/test_ind.txt": "66a497671114e73f450cf9e5eb79be5e5790121816228eb43e3ba3481e2bfa28",
    "NELLInductive/v1/raw/train.txt": "d2b5d535ace4d1e3a18e69176e84a3ada1ca62fb4a647a12c4222781b91615ba",
    "NELLInductive/v1/raw/valid.txt": "d11d6de249ff1185e701536a7d63f0c997cf7cce2646f3d17c06ecc885835726",
    "NELLInductive/v2/raw/train_ind.txt": "d92470e3e07f354e665ee9cc5c4e0fb99ff8e6414839f340607be32e7709aef4",
    "NELLInductive/v2/raw/valid_ind.txt": "efcd59a03cb9a345f35ce7139c4817bc632143325394b474278b75568fe0808f",
    "NELLInductive/v2/raw/test_ind.txt": "b479de23638f3d86d96094b0e3a18144433841f84e1cec7af192b44839c8e1cf",
    "NELLInductive/v2/raw/train.txt": "850a117e29126fd2e8d9d4ddb3430ee540c7ed2999142fb0fd9d7195204ce0a1",
    "NELLInductive/v2/raw/valid.txt": "deb8b4c65548da49f3d8a1a171dbfa106de8b38d6747d38486ced4d324d3a600",
    "NELLInductive/v3/raw/train_ind.txt": "08f161d7a842bdfef4394222b00996fc657cf9d8c8fabf73cfaf42c41a44b20c",
    "NELLInductive/v3/raw/valid_ind.txt": "0be937cd2ed452b950b4eadd7f306960004a334fdd478f4f68172fec86596daa",
    "NELLInductive/v3/raw/test_ind.txt": "f24cd61c799edced7dac727a132bb57a8791092c4705f7f7bf5474f4160da67d",
    "NELLInductive/v3/raw/train.txt": "88507ad17277d91d1a6d55d5b6ad4661a4b00bb7087923794a8cac820944dd73",
    "NELLInductive/v3/raw/valid.txt": "23313dcf7951a8cfc12b7d0c4bc84e5119024b1342d5ca5c042f38bab6cf9d71",
    "NELLInductive/v4/raw/train_ind.txt": "30ccc157815e5176bb2fda0f625dd1d71ed5b2fdc3c30484d0b9593e18be2c66",
    "NELLInductive/v4/raw/valid_ind.txt": "3f1e61b8e446c684787bed333578c9c9af8d917e1e2277ae051d19d5710b727f",
    "NELLInductive/v4/raw/test_ind.txt": "040f15a24c22897b6a583e007044e1910523214a463491618d8aa635bf89dbdc",
    "NELLInductive/v4/raw/train.txt": "00302276571b80a910582d00a20041d4ac8026ca4bbe457de8143e8ecb339d23",
    "NELLInductive/v4/raw/valid.txt": "f5dfc264c150172225a519f67a3a2821635ef7d19d4ab45a179572ac8749fa6a",
    "ILPC2022/small/raw/transductive_train.txt": "7d522a71de14d8dcd686906ed0c9f589ba4e71171367814a115d4bc0ad3ef06b",
    "ILPC2022/small/raw/inference_graph.txt": "21f9f731c3128b50f8392ce1aa0a5d0bd5c24fa16f141e3110e32b63049189c2",
    "ILPC2022/small/raw/inf_valid.txt": "a11e244f066e8bad85ec6e684e1249bf6e5c2ae98b3e02c4a6e15f476ebfa908",
    "ILPC2022/small/raw/inf_test.txt": "c256b4a5359649a708047d5c429e484ba808c7b28c2f7c91844fcb4a0e962b01",
    "ILPC2022/large/raw/transductive_train.txt": "7dafd48be5a02795b767805c8b16204b1c555aae4b9dd12094cbcc072c873152",
    "ILPC2022/large/raw/inference_graph.txt": "e9f59ca42e329422b8046a44f780415ee61e88ec73eef735b4b10f1a44f12877",
    "ILPC2022/large/raw/inf_valid.txt": "8c598721d316430bf406d223025b7b28a5dc7f23b277ae83f11d1265fac4aa81",
    "ILPC2022/large/raw/inf_test.txt": "a02b6513e0bc38d51e9a0b429b7c66dded5f600e02c6be83c812e488aab566e5",
    "CoDExSmall/raw/train.txt": "64f93b7f314f3936a6f65739721429db3f6a7c8f5a1e1104ec3bb544f7434f59",
    "CoDExSmall/raw/valid.txt": "3831c0e57daef03c3a18cdd1a72e370b496f696c5218883d35c7d2ab8a6a772c",
    "CoDExSmall/raw/test.txt": "27127fcb34688c4778e88a39ef3c9b540807da846021e9d9685660ac1838aca1",
    "CoDExMedium/raw/train.txt": "d99c3437ab51690391a26d96976adf6e5494dba7ef6902e77000551bfa566556",
    "CoDExMedium/raw/valid.txt": "11c323096367354940846b9ed940c5dabddc1d20a70474222babe7e7fd28b28d",
    "CoDExMedium/raw/test.txt": "0575ce05e4ce915e395bb4f708e8df9547989dd4c8c71407cbfd78c19daffcf7",
    "FB15k237/raw/entities.dict": "55666c4fb9c2990ef809e41d3a0023503b1f927fd00a1c947f21a805608f50ac",
    "FB15k237/raw/relations.dict": "e98ebcc621a217ca80d44992cdf0ef5f0eb355ff9aff0ba1a3e939f6ca8fb095",
    "FB15k237/raw/valid.txt": "cf6309010852f6a8d47a45df830a426415d1ee6f7a3970a8376ff1fb81db4a5c",
    "FB15k237/raw/test.txt": "5711cf41623ceb4eacc50eb6108a3ca6565c7492e3caaf82a3e355cc660d1574",
    "WN18RR/raw/train.txt": "038612e783c215ee5f3ca9fbfca27b8d0739be1028fe4ee7c174aecf0b83d5df",
    "WN18RR/raw/valid.txt": "453ce7202afa58094a04d2b1560ee2b02660f1c260b32ce6651c8ccedd1028ab",
    "WN18RR/raw/test.txt": "0383bceaaa1096cf3c03ec021ed0048068e2355dbfc0239b292cefdac821cec5",
    "NLIngram/25/raw/transductive_train.txt": "7a3ccb49ad79d4c75a325702760ea681411027f052d9767c5cf00ac3f0297afe",
    "NLIngram/25/raw/inference_graph.txt": "23e288c0b916f10f4c8208fc669701228070e48933c56107f08a16bfc625b1be",
    "NLIngram/25/raw/inf_valid.txt": "6c1318bd6e71921e06c9fb31e3546a691a51cbf8b2fefdfc6d6bb6a5feeb145b",
    "NLIngram/25/raw/inf_test.txt": "f29d434e03b0523fecfbd0eb9cd611083e96d7261b8449d0b081e9cce4d0cde1",
    "NLIngram/75/raw/transductive_train.txt": "6c145bafe2dceb966c0e1c703b52d749a05e361c546feb7486b5cd85d12a7697",
    "NLIngram/75/raw/inference_graph.txt": "91b8e1d02aafc2522c6e4b98f7f5a51744a531c40f7d8155332ae5fecd2d4c61",
    "NLIngram/75/raw/inf_valid.txt": "59e4621678dd7c15af59b79d057f1333fee08e8de78ce79b3f0a063b9a2d5c8c",
    "NLIngram/75/raw/inf_test.txt": "a4390ce759fd864e09b53e97c774b1be5da29132fb0e1c7a36e28246a01fab38",
    "NLIngram/100/raw/transductive_train.txt": "db0e8a2709235cc0ea5e2acac0b832617ebf1c23e8a5ee7c28d114f840c5622e",
    "NLIngram/100/raw/inference_graph.txt": "15a8c2279787e7f34b970dc2ad6e795a2fd87b64b3a98c9d1671b81970dcdddf",
    "NLIngram/100/raw/inf_valid.txt": "039547e15c5aa4d0d7e5fd6514482c1fdba4ee6143091ebf7b90c4f0f2a291aa",
    "NLIngram/100/raw/inf_test.txt": "26e7a862aa409d51c9abdd95a0064ca8942a2d49daa106c6446b0ed306f17df2",
    "WKIngram/50/raw/transductive_train.txt": "d6816414f49c2f6527923a1c4e865880af36234c0a923d62333cf0e49d9b7cdb",
    "WKIngram/50/raw/inference_graph.txt": "1dd6c875754bf46d76a145fa90a2134fc2d45a69741b71a88a3bcf9c53cd1559",
    "WKIngram/50/raw/inf_valid.txt": "b2f63f9da80069d2453a804bb388cf401732be8f4ac9e38ab0c0a77550915826",
    "WKIngram/50/raw/inf_test.txt": "a7742b4f5b3c0b121077da181354e160b379374f6589f22661dcd5474c3abf0c",
    "WKIngram/75/raw/transductive_train.txt": "8a7ff42048c3ff5bc248dd30d779b0d184d1c8c9398b642d30601b6d7ae90033",
    "WKIngram/75/raw/inference_graph.txt": "5b759dd362a0e67746296a6e336c064007feb937b648b60998f2bebe6c8d31a0",
    "WKIngram/75/raw/inf_valid.txt": "007f67b42c37c8c56fe7be7cc8e77a5b58918cd14a6828c8fd4fad09ce7bedd5",
    "WKIngram/75/raw/inf_test.txt": "0ca70e7f6a10bf41a7f3a5895936c54b0f7694db3a7d1337eea29bd9779655ed",
    "WKIngram/100/raw/transductive_train.txt": "13d6fddf267b93c1784abbc8fd9ff0bc7518d3900abfbc303086a7fb4af87877",
    "WKIngram/100/raw/inference_graph.txt": "39ae655328629114377dc1eae8bc6973699d1928ab3a3a758ca12462ec7e3c0a",
    "WKIngram/100/raw/inf_valid.txt": "ef6f62e0e65f4fd942ab01cedd3142513e4de34ca6bc318e839f79e16c272c4a",
    "WKIngram/100/raw/inf_test.txt": "243b4b05313dce83a26bdebabde7308bc77b390b1430b216a795abbf20a13c16",
    "HM/3k/raw/transductive_train.txt": "f2831cf64a35b12be1380b36bcf27b98c2adae609d7e254e29fde03fe1e1c98c",
    "HM/3k/raw/inference_graph.txt": "962947858f198e2ad133a456f9b8ce375cfb73afb9350d98811a1b9603a623d3",
    "HM/3k/raw/inf_valid.txt": "febbc625187675a12fa6dd53c15d7b541aae321c20fcae7ead60adf058e81203",
    "HM/3k/raw/inf_test.txt": "abbbd215969bd7a11c19a4a78947f5076e22e969f6f4212ac354859432c32fff",
    "HM/3k/raw/relation_vocab.txt": "8ec8e06eccc5294d886ff050faaa8b33f67162d00dba30318753f6398c63fa7e",
    "HM/5k/raw/transductive_train.txt": "f2506306d70bd097b22aa8c01bd1d3671668fabc279a183a03514572131bd349",
    "HM/5k/raw/inference_graph.txt": "8c56d3d1e0af738c8e68bc4dd57d0cd39d333da3ea836dc245acd144307c6e3c",
    "HM/5k/raw/inf_valid.txt": "94e48458acf574f492bd1a84d3a3f1a9c386554a7506f84b63c8705eaaf7e310",
    "HM/5k/raw/inf_test.txt": "3b8fb508d61691f2f6b3b9a22ecbf0c9c87b81d6fa62c962aebe812c190461aa",
    "HM/5k/raw/relation_vocab.txt": "8ec8e06eccc5294d886ff050faaa8b33f67162d00dba30318753f6398c63fa7e",
    "ConceptNet100k/raw/train.txt": "ab1f9d757f166a5344c0e1dde4cf47af012a99a64710cece43c5c926963d228f",
    "ConceptNet100k/raw/valid.txt": "7d3feaae5f98bfa5061ec287b4623c5922580b90f910d6c90c629ac109c4adff",
    "ConceptNet100k/raw/test.txt": "c90350c5b564c83b17d155328dcd3697165dc03718fc2134d017abf6d85e7740",
}


def _check_pins() -> None:
    known = {spec.relpath(raw) for spec in DATASETS.values() for raw in spec.files}
    for key, digest in SHA256.items():
        if key not in known:
            raise RuntimeError(f"SHA256 pins {key}, which is no raw file of a registered dataset")
        if len(digest) != 64 or digest.strip("0123456789abcdef"):
            raise RuntimeError(f"SHA256[{key!r}] is not a lower-case hex sha256")


_check_pins()


# --------------------------------------------------------------------------------------------------
# Sizes and citations, for the catalogue (`are-search datasets`).
#
# COUNTS: what are_model.data.counts.count_raw_files counts in a dataset's raw files -- distinct entities and
# relations over all its triple files, and the triples of each file by role -- measured from the files of
# ../shared/datasets (the bytes SHA256SUMS lists) for every dataset present there. A dataset without an entry
# was not measured: its files are not in that reference set, and no number is written here that was not
# counted (the catalogue measures it when its files are under the data root). tests/test_catalogue.py counts
# every present graph again and compares.

COUNTS: dict[str, tuple[int, int, dict[str, int]]] = {
    'FB15k237': (14541, 237, {'train': 272115, 'valid': 17535, 'test': 20466}),
    'WN18RR': (40943, 11, {'train': 86835, 'valid': 3034, 'test': 3134}),
    'ConceptNet100k': (78334, 34, {'train': 100000, 'valid': 1200, 'test': 1200}),
    'CoDExSmall': (2034, 42, {'train': 32888, 'valid': 1827, 'test': 1828}),
    'CoDExMedium': (17050, 51, {'train': 185584, 'valid': 10310, 'test': 10311}),
    'FB15k237Inductive:v1': (2687, 180, {'train': 4245, 'valid': 489, 'inf_graph': 1993, 'inf_valid': 206, 'inf_test': 205}),
    'FB15k237Inductive:v2': (4268, 200, {'train': 9739, 'valid': 1166, 'inf_graph': 4145, 'inf_valid': 469, 'inf_test': 478}),
    'FB15k237Inductive:v3': (6169, 215, {'train': 17986, 'valid': 2194, 'inf_graph': 7406, 'inf_valid': 866, 'inf_test': 865}),
    'FB15k237Inductive:v4': (7758, 219, {'train': 27203, 'valid': 3352, 'inf_graph': 11714, 'inf_valid': 1416, 'inf_test': 1424}),
    'WN18RRInductive:v1': (3668, 9, {'train': 5410, 'valid': 630, 'inf_graph': 1618, 'inf_valid': 185, 'inf_test': 188}),
    'WN18RRInductive:v2': (9711, 10, {'train': 15262, 'valid': 1838, 'inf_graph': 4011, 'inf_valid': 411, 'inf_test': 441}),
    'WN18RRInductive:v3': (17154, 11, {'train': 25901, 'valid': 3097, 'inf_graph': 6327, 'inf_valid': 538, 'inf_test': 605}),
    'WN18RRInductive:v4': (10945, 9, {'train': 7940, 'valid': 934, 'inf_graph': 12334, 'inf_valid': 1394, 'inf_test': 1429}),
    'NELLInductive:v1': (3328, 14, {'train': 4687, 'valid': 414, 'inf_graph': 833, 'inf_valid': 101, 'inf_test': 100}),
    'NELLInductive:v2': (4650, 88, {'train': 8219, 'valid': 922, 'inf_graph': 4586, 'inf_valid': 459, 'inf_test': 476}),
    'NELLInductive:v3': (8210, 142, {'train': 16393, 'valid': 1851, 'inf_graph': 8048, 'inf_valid': 811, 'inf_test': 809}),
    'NELLInductive:v4': (4886, 76, {'train': 7546, 'valid': 876, 'inf_graph': 7073, 'inf_valid': 716, 'inf_test': 731}),
    'ILPC2022:small': (16883, 48, {'train': 78616, 'inf_graph': 20960, 'valid': 2908, 'test': 2902}),
    'ILPC2022:large': (75872, 65, {'train': 202446, 'inf_graph': 77044, 'valid': 10179, 'test': 10184}),
    'WKIngram:50': (21350, 113, {'train': 82481, 'inf_graph': 9672, 'valid': 3224, 'test': 3225}),
    'WKIngram:75': (9575, 86, {'train': 28741, 'inf_graph': 3430, 'valid': 1143, 'test': 1144}),
    'WKIngram:100': (21920, 104, {'train': 49875, 'inf_graph': 13487, 'valid': 4496, 'test': 4496}),
    'NLIngram:25': (6542, 158, {'train': 17578, 'inf_graph': 2230, 'valid': 743, 'test': 744}),
    'NLIngram:75': (4185, 159, {'train': 11058, 'inf_graph': 1818, 'valid': 606, 'test': 607}),
    'NLIngram:100': (2967, 108, {'train': 7832, 'inf_graph': 2378, 'valid': 793, 'test': 793}),
    'HM:3k': (37978, 11, {'train': 71097, 'inf_graph': 38285, 'valid': 1201, 'test': 1349}),
    'HM:5k': (37615, 11, {'train': 57601, 'inf_graph': 48425, 'valid': 900, 'test': 2124}),
    'FBNELL:FBNELL_v1': (9546, 195, {'train': 10275, 'inf_graph': 10685, 'valid': 1224, 'test': 597}),
    'Metafam:Metafam': (1972, 28, {'train': 13821, 'inf_graph': 7257, 'valid': 590, 'test': 184}),
}

#: The publication to cite for each dataset family (keyed by the class name); a dataset made from another
#: one (the GraIL splits of FB15k-237, WN18RR and NELL-995) is cited by the paper that made the split.
CITATIONS: dict[str, str] = {
    "FB15k237": "Toutanova & Chen, Observed versus latent features for knowledge base and text inference, CVSC 2015",
    "WN18RR": "Dettmers et al., Convolutional 2D Knowledge Graph Embeddings, AAAI 2018",
    "NELL995": "Xiong et al., DeepPath: A Reinforcement Learning Method for Knowledge Graph Reasoning, EMNLP 2017",
    "ConceptNet100k": "Malaviya et al., Commonsense Knowledge Base Completion with Structural and Semantic Context, "
                      "AAAI 2020",
    "DBpedia100k": "Ding et al., Improving Knowledge Graph Embedding Using Simple Constraints, ACL 2018",
    "YAGO310": "Mahdisoltani et al., YAGO3: A Knowledge Base from Multilingual Wikipedias, CIDR 2015",
    "Hetionet": "Himmelstein et al., Systematic integration of biomedical knowledge prioritizes drugs for "
                "repurposing, eLife 2017",
    "AristoV4": "Chen et al., Relation Prediction as an Auxiliary Training Objective for Improving Multi-Relational "
                "Graph Representations, AKBC 2021",
    **dict.fromkeys(("CoDExSmall", "CoDExMedium", "CoDExLarge"),
                    "Safavi & Koutra, CoDEx: A Comprehensive Knowledge Graph Completion Benchmark, EMNLP 2020"),
    **dict.fromkeys(("WDsinger", "NELL23k", "FB15k237_10", "FB15k237_20", "FB15k237_50"),
                    "Lv et al., Dynamic Anticipation and Completion for Multi-Hop Reasoning over Sparse Knowledge "
                    "Graph, EMNLP 2020"),
    **dict.fromkeys(("FB15k237Inductive", "WN18RRInductive", "NELLInductive"),
                    "Teru et al., Inductive Relation Prediction by Subgraph Reasoning, ICML 2020"),
    "ILPC2022": "Galkin et al., An Open Challenge for Inductive Link Prediction on Knowledge Graphs, "
                "arXiv:2203.01520, 2022",
    **dict.fromkeys(("FBIngram", "WKIngram", "NLIngram"),
                    "Lee et al., InGram: Inductive Knowledge Graph Embedding via Relation Graphs, ICML 2023"),
    "HM": "Hamaguchi et al., Knowledge Transfer for Out-of-Knowledge-Base Entities, IJCAI 2017 (HM:1k/3k/5k); "
          "Liu et al., INDIGO: GNN-Based Inductive Knowledge Graph Completion Using Pair-Wise Encoding, NeurIPS 2021 "
          "(HM:indigo)",
    **dict.fromkeys(("FBNELL", "Metafam"),
                    "Zhou et al., A Multi-Task Perspective for Link Prediction with New Relation Types and Nodes, "
                    "arXiv:2307.06046, 2023"),
    **dict.fromkeys(("WikiTopicsMT1", "WikiTopicsMT2", "WikiTopicsMT3", "WikiTopicsMT4"),
                    "Gao et al., Double Equivariance for Inductive Link Prediction for Both New Nodes and New Relation "
                    "Types, arXiv:2302.01313, 2023"),
}


def _check_tables() -> None:
    for name in COUNTS:
        if name not in DATASETS:
            raise RuntimeError(f"COUNTS holds {name}, which is no registered dataset")
        roles = {raw.role for raw in DATASETS[name].files}
        if not set(COUNTS[name][2]) <= roles:
            raise RuntimeError(f"COUNTS[{name!r}] counts a file role {name} has not")
    missing = sorted({spec.class_name for spec in DATASETS.values()} - set(CITATIONS))
    if missing:
        raise RuntimeError(f"CITATIONS has no entry for {', '.join(missing)}")


_check_tables()


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
    raise UnknownDatasetError(f"unknown dataset {name!r}{hint} (`are-search datasets` lists every known dataset)")


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` (resolved with :func:`resolve_dataset_name`)."""
    return DATASETS[resolve_dataset_name(name)]
