"""Vocabulary and split rules of each loader family (spec §7.2), from raw bytes to :class:`SplitSpec`.

Every builder takes the dataset's spec and ``{role: (path, bytes)}`` of its raw files and returns the
train/valid/test :class:`SplitSpec` objects and the :class:`LoadReport` of what it did with each line. Ids
follow the upstream loaders exactly, because the reference MRRs depend on the graphs (ids themselves do
not change scores, but vocabulary sizes, inverse offsets and which triples are kept do).

Valid/test triples with a symbol absent from the graph they are ranked on
--------------------------------------------------------------------------

"Absent" means: the head or the tail is no endpoint of any fact triple of that graph, or the relation
labels none of them. Each family follows one rule, that of the public loader ULTRA's checkpoints were
evaluated with (``ultra/datasets.py`` and the PyG datasets it wraps, as spec §7.2 describes them): the
query counts and ultra_3g MRRs of ``reference_results.md`` hold under these rules and no other. "Kept"
means ranked like any other query: an absent entity is a node without edges (isolated), an absent
relation an id without edges.

================  =========================================  ==============  =============================  ====
rule              split: the graph it is ranked on           absent entity   absent relation                why
================  =========================================  ==============  =============================  ====
transductive      valid, test: training graph                kept, isolated  kept, no edges                 [T]
fb15k237          valid, test: training graph                kept, isolated  kept, no edges                 [F]
wn18rr            valid, test: training graph                kept, isolated  kept, no edges                 [W]
grail             valid: training graph (``train.txt``)      kept, isolated  kept, no edges                 [G]
grail             test = valid_ind + test_ind: inference     kept, isolated  kept if in train.txt or        [G]
                  graph (``train_ind.txt``)                                  valid.txt, else **error**
inductive/ILPC    valid, test: inference graph               kept, isolated  kept, no edges (new id)        [I]
inductive/MTDEA   valid: training graph                      **dropped**     **dropped**                    [M]
inductive/MTDEA   test: inference graph                      kept, isolated  kept, no edges (new id)        [I]
inductive/HM      valid: training graph                      kept, isolated  **error**                      [H]
inductive/HM      test: inference graph                      kept, isolated  kept, no edges (new id)        [I]
================  =========================================  ==============  =============================  ====

Which datasets follow which rule (:func:`rule_name`, from the registry's ``family``,
``valid_on_inference`` and ``limit_valid_vocab``): transductive = CoDEx S/M/L, NELL995, YAGO310,
ConceptNet100k, DBpedia100k, Hetionet, AristoV4, WDsinger, NELL23k, FB15k237_10/20/50; fb15k237 =
FB15k237; wn18rr = WN18RR; grail = FB15k237Inductive, WN18RRInductive, NELLInductive v1-v4;
inductive/ILPC = ILPC2022, FBIngram, WKIngram, NLIngram; inductive/MTDEA = FBNELL, Metafam, WikiTopicsMT1-4;
inductive/HM = HM 1k/3k/5k/indigo.

Why, loader by loader:

* [T] ``TransductiveDataset.load_file`` numbers every symbol of train, valid and test in first-appearance
  order and counts N and R after test: a symbol first met in valid or test is a node or relation of the
  training graph without edges.
* [F] PyG ``RelLinkPredDataset``: ``entities.dict`` and ``relations.dict`` fix the ids and N; a symbol of
  the dicts that no training fact uses is kept as above, a name outside the dicts is a ``KeyError``, here a
  :class:`VocabularyError` naming file and line.
* [W] PyG ``WordNet18RR``: N counts the entities of all three files; relations come from a fixed table of
  11 names, all of which label training facts (here: the sorted names of all three files).
* [G] ``GrailInductiveDataset``: one relation vocabulary over ``train.txt`` and ``valid.txt``, one entity
  vocabulary per graph, extended by the files ranked on it; the ``_ind`` files may not add a relation
  (``assert r_token in inv_relation_vocab``), here a :class:`VocabularyError`.
* [I] ``InductiveDataset.load_file``: valid (ILPC/InGram) and test triples extend the inference vocabularies;
  the inverse offset of the inference graph is the size of the extended relation vocabulary.
* [M] ``MTDEAInductive`` reads the valid file with ``load_file(limit_vocab=True)``: a triple whose head,
  tail or relation is not in the training graph is skipped without extending any vocabulary.
* [H] ``InductiveDataset`` with ``valid_on_inf = False``: an absent valid entity extends the training
  entity vocabulary (the valid split's graph has the extra, isolated nodes); an absent relation would get
  an id inside the inverse block (``num_relations`` stays 2R of the training graph), so it is refused.

Training graphs and inference graphs are read as they are: every fact line is a fact. A counted query
line has one reason: head and tail are checked before the relation (ULTRA's order). The record of a load
(:class:`~are_model.data.parse.LoadReport`, ``KGDataset.report``) counts, per file, the triples dropped by
these rules (``dropped``) and those kept with an absent symbol (``kept_unseen``).

Lines, in every family
----------------------

* A line without exactly three non-empty fields is an error naming file and line
  (:class:`RawFormatError`): ULTRA's ``u, r, v = l.split()`` fails there too, and dropping it would
  change a benchmark quietly.
* A blank line is skipped (``dropped["blank"]``; ULTRA would fail on it).
* Repaired and counted (``repaired``): whitespace before or after a line or around a tab-separated field
  (``whitespace``); a CR or CRLF ending in a file whose other lines end otherwise (``line_ending``; a file
  that keeps one ending throughout, like FB15k-237's CRLF, is read as Python's text mode reads it and only
  recorded in ``line_ending``); a UTF-8 byte-order mark (``bom``).
* Kept as read and counted (``odd``): a triple repeated within a file (``duplicate``: ULTRA keeps it, a
  repeated fact is a parallel edge and a repeated query is ranked twice); in a whitespace-separated file,
  a line whose separators differ from the file's usual ones (``separator``: a tab among spaces, two
  spaces); a last line without line ending (``no_final_newline``: a truncated download looks like this).

When anything was dropped, repaired, kept with an absent symbol or odd, :func:`~are_model.data.load_dataset`
logs one WARNING line naming the dataset, its raw folder and each such file with its counts.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable

import torch

from .errors import RawFormatError, VocabularyError
from .graph import FactGraph, SplitSpec
from .parse import (BLANK, UNSEEN_ENTITY, UNSEEN_RELATION, FileReport, LineStats, LoadReport, TripleFile, Vocab,
                    encode, parse_id_dict, parse_triples)
from .registry import (FB15K237, FILTER_INFERENCE_ALL, FILTER_SPLIT_GRAPH, GRAIL, INDUCTIVE, TRANSDUCTIVE,
                       WN18RR, DatasetSpec)

__all__ = ["build_splits", "rule_name", "RawBlobs"]

RawBlobs = dict[str, tuple[str, bytes]]  # role -> (path, bytes)

Splits = dict[str, SplitSpec]


def rule_name(spec: DatasetSpec) -> str:
    """The row of the table above that ``spec`` follows (``"grail"``, ``"inductive/MTDEA"``, ...)."""
    if spec.family != INDUCTIVE:
        return spec.family
    if spec.valid_on_inference:
        return "inductive/ILPC"
    return "inductive/MTDEA" if spec.limit_valid_vocab else "inductive/HM"


def _symbols(*files: TripleFile) -> tuple[set[str], set[str]]:
    """Entities (heads and tails) and relations of the given files."""
    entities: set[str] = set()
    relations: set[str] = set()
    for f in files:
        entities.update(f.heads)
        entities.update(f.tails)
        relations.update(f.relations)
    return entities, relations


def _absent(queries: TripleFile, graph: tuple[set[str], set[str]]) -> Counter[str]:
    """Lines of ``queries`` with a symbol absent from ``graph``, by reason (entities checked first)."""
    entities, relations = graph
    out: Counter[str] = Counter()
    for h, r, t in zip(queries.heads, queries.relations, queries.tails):
        if h not in entities or t not in entities:
            out[UNSEEN_ENTITY] += 1
        elif r not in relations:
            out[UNSEEN_RELATION] += 1
    return out


class _Reader:
    """Parses the raw files of one load and keeps what each held, for the :class:`LoadReport`."""

    def __init__(self, spec: DatasetSpec, blobs: RawBlobs):
        self.spec, self.blobs = spec, blobs
        self.reports: dict[str, FileReport] = {}

    def triples(self, role: str) -> TripleFile:
        path, data = self.blobs[role]
        return parse_triples(data, path, delimiter=self.spec.delimiter, column_order=self.spec.column_order)

    def _record(self, role: str, stats: LineStats, kept: int, *, ranked_on: str | None = None,
                dropped: Counter[str] | None = None, kept_unseen: Counter[str] | None = None) -> None:
        reasons = {BLANK: stats.blank, **(dropped or {})}
        self.reports[role] = FileReport(
            role=role, file=Path(self.blobs[role][0]).name, lines=stats.lines, kept=kept,
            line_ending=stats.line_ending, ranked_on=ranked_on, dropped={k: v for k, v in reasons.items() if v},
            repaired=dict(stats.repaired), odd=dict(stats.odd),
            kept_unseen={k: v for k, v in (kept_unseen or {}).items() if v})

    def id_dict(self, role: str) -> list[str]:
        path, data = self.blobs[role]
        parsed = parse_id_dict(data, path)
        self._record(role, parsed.stats, len(parsed.names))
        return parsed.names

    def graph(self, role: str, parsed: TripleFile) -> None:
        """``parsed`` is a file of facts (and training targets): every line is kept."""
        self._record(role, parsed.stats, len(parsed))

    def queries(self, role: str, parsed: TripleFile, graph: tuple[set[str], set[str]], ranked_on: str,
                dropped: Counter[str] | None = None) -> None:
        """``parsed`` holds queries ranked on ``graph``; ``dropped`` what the family's rule dropped.

        A dropped line is absent from its graph for the reason it was dropped (the dropping vocabulary is
        the graph's), so the lines kept with an absent symbol are the absent ones less the dropped ones.
        """
        dropped = dropped or Counter()
        kept_unseen = _absent(parsed, graph) - dropped
        self._record(role, parsed.stats, len(parsed) - sum(dropped.values()), ranked_on=ranked_on,
                     dropped=dropped, kept_unseen=kept_unseen)

    def report(self) -> LoadReport:
        order = [f.role for f in self.spec.files if f.role in self.reports]
        return LoadReport(self.spec.name, rule_name(self.spec), tuple(self.reports[role] for role in order))


def _cat(*parts: torch.Tensor) -> torch.Tensor:
    """Concatenate ``[*, 3]`` triple tensors (a single part is returned as is, keeping it shared)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)


def _transductive(spec: DatasetSpec, read: _Reader) -> Splits:
    """Generic rule: first appearance over (facts,) train, valid, test; N and R counted after test."""
    entities, relations = Vocab(), Vocab()
    train_roles = ("facts", "train") if spec.has_role("facts") else ("train",)
    train_files = [read.triples(r) for r in train_roles]
    train = _cat(*(encode(f, entities, relations) for f in train_files))
    valid_file, test_file = read.triples("valid"), read.triples("test")
    valid = encode(valid_file, entities, relations)
    test = encode(test_file, entities, relations)
    graph_symbols = _symbols(*train_files)
    for role, parsed in zip(train_roles, train_files):
        read.graph(role, parsed)
    read.queries("valid", valid_file, graph_symbols, "training")
    read.queries("test", test_file, graph_symbols, "training")
    graph = FactGraph(train, len(entities), relations.names, entities.names)
    known = torch.cat([train, valid, test])
    return {"train": SplitSpec(graph, train, train), "valid": SplitSpec(graph, valid, known),
            "test": SplitSpec(graph, test, known)}


def _fb15k237(spec: DatasetSpec, read: _Reader) -> Splits:
    """Ids fixed by ``entities.dict`` / ``relations.dict``; every triple symbol must be in them."""
    entities = Vocab.from_names(read.id_dict("entities"))
    relations = Vocab.from_names(read.id_dict("relations"))
    files = {s: read.triples(s) for s in ("train", "valid", "test")}
    parts = {s: encode(f, entities, relations, new_entities="error", new_relations="error") for s, f in files.items()}
    read.graph("train", files["train"])
    graph_symbols = _symbols(files["train"])
    for s in ("valid", "test"):
        read.queries(s, files[s], graph_symbols, "training")
    graph = FactGraph(parts["train"], len(entities), relations.names, entities.names)
    known = torch.cat([parts["train"], parts["valid"], parts["test"]])
    return {"train": SplitSpec(graph, parts["train"], parts["train"]),
            "valid": SplitSpec(graph, parts["valid"], known), "test": SplitSpec(graph, parts["test"], known)}


def _wn18rr(spec: DatasetSpec, read: _Reader) -> Splits:
    """Alphabetical relations; entities per file, all heads then all tails; edges sorted by (src, dst)."""
    files = [read.triples(s) for s in ("train", "valid", "test")]
    relations = Vocab.from_names(sorted({r for f in files for r in f.relations}))
    entities = Vocab()
    for f in files:
        for name in f.heads:
            entities.add(name)
        for name in f.tails:
            entities.add(name)
    encoded = [encode(f, entities, relations, new_entities="error", new_relations="error") for f in files]
    read.graph("train", files[0])
    graph_symbols = _symbols(files[0])
    read.queries("valid", files[1], graph_symbols, "training")
    read.queries("test", files[2], graph_symbols, "training")
    everything = torch.cat(encoded)
    which = torch.cat([torch.full((len(e),), i, dtype=torch.long) for i, e in enumerate(encoded)])
    num_nodes = len(entities)
    order = torch.sort(everything[:, 0] * num_nodes + everything[:, 2], stable=True).indices
    everything, which = everything[order], which[order]
    train, valid, test = (everything[which == i] for i in range(3))
    graph = FactGraph(train, num_nodes, relations.names, entities.names)
    return {"train": SplitSpec(graph, train, train), "valid": SplitSpec(graph, valid, everything),
            "test": SplitSpec(graph, test, everything)}


def _grail(spec: DatasetSpec, read: _Reader) -> Splits:
    """Shared relation vocabulary from train.txt, valid.txt; ``_ind`` files may not add relations.

    Test graph = train_ind; test queries = valid_ind then test_ind (merged, as ULTRA does).
    """
    train_entities, relations = Vocab(), Vocab()
    files = {role: read.triples(role) for role in ("train", "valid", "inf_graph", "inf_valid", "inf_test")}
    train = encode(files["train"], train_entities, relations)
    valid = encode(files["valid"], train_entities, relations)
    test_entities = Vocab()
    ind = {role: encode(files[role], test_entities, relations, new_relations="error")
           for role in ("inf_graph", "inf_valid", "inf_test")}
    read.graph("train", files["train"])
    read.queries("valid", files["valid"], _symbols(files["train"]), "training")
    read.graph("inf_graph", files["inf_graph"])
    inference_symbols = _symbols(files["inf_graph"])
    for role in ("inf_valid", "inf_test"):
        read.queries(role, files[role], inference_symbols, "inference")
    test = torch.cat([ind["inf_valid"], ind["inf_test"]])
    train_graph = FactGraph(train, len(train_entities), relations.names, train_entities.names)
    test_graph = FactGraph(ind["inf_graph"], len(test_entities), relations.names, test_entities.names)
    return {"train": SplitSpec(train_graph, train, train),
            "valid": SplitSpec(train_graph, valid, torch.cat([train, valid])),
            "test": SplitSpec(test_graph, test, torch.cat([ind["inf_graph"], test]))}


def _relation_display_names(spec: DatasetSpec, names: list[str] | None, raw: list[str], path: str) -> list[str]:
    """HM 1k/3k/5k store integer relation ids; map them through the OOKB vocabulary when present."""
    if names is None:
        return list(raw)
    out = []
    for token in raw:
        if not token.isdigit() or int(token) >= len(names):
            raise VocabularyError(f"{path}: relation id {token!r} of {spec.name} has no name in this vocabulary")
        out.append(names[int(token)])
    return out


def _inductive(spec: DatasetSpec, read: _Reader) -> Splits:
    """ILPC / InGram / HM / MTDEA / WikiTopics.

    Train graph and inference graph have separate vocabularies. Valid triples extend the inference
    vocabulary when they live on it (``valid_on_inference``); otherwise they are on the train graph:
    MTDEA/WikiTopics drop those with an unseen symbol, HM gives unseen valid entities new (isolated)
    nodes of the valid split's graph and rejects unseen relations. Test triples extend the inference
    vocabulary; the inverse offset of the inference graph is the size of that extended vocabulary.
    """
    train_file, inf_file = read.triples("train"), read.triples("inf_graph")
    train_entities, train_relations = Vocab(), Vocab()
    train = encode(train_file, train_entities, train_relations)
    inf_entities, inf_relations = Vocab(), Vocab()
    inference = encode(inf_file, inf_entities, inf_relations)
    valid_file = read.triples("valid")
    valid_entities = train_entities
    dropped: Counter[str] = Counter()
    if spec.valid_on_inference:
        valid = encode(valid_file, inf_entities, inf_relations)
    elif spec.limit_valid_vocab:
        valid = encode(valid_file, train_entities, train_relations, new_entities="drop", new_relations="drop",
                       dropped=dropped)
    else:
        valid_entities = train_entities.copy()
        valid = encode(valid_file, valid_entities, train_relations, new_relations="error")
    test_file = read.triples("test")
    test = encode(test_file, inf_entities, inf_relations)
    read.graph("train", train_file)
    read.graph("inf_graph", inf_file)
    inference_symbols = _symbols(inf_file)
    if spec.valid_on_inference:
        read.queries("valid", valid_file, inference_symbols, "inference")
    else:
        read.queries("valid", valid_file, _symbols(train_file), "training", dropped)
    read.queries("test", test_file, inference_symbols, "inference")

    names, names_path = None, ""
    if "relation_names" in read.blobs:
        names, names_path = read.id_dict("relation_names"), read.blobs["relation_names"][0]
    train_rel_names = _relation_display_names(spec, names, train_relations.names, names_path)
    inf_rel_names = _relation_display_names(spec, names, inf_relations.names, names_path)
    train_graph = FactGraph(train, len(train_entities), train_rel_names, train_entities.names)
    inf_graph = FactGraph(inference, len(inf_entities), inf_rel_names, inf_entities.names)
    if spec.valid_on_inference:
        valid_graph = inf_graph
    elif len(valid_entities) != len(train_entities):
        valid_graph = FactGraph(train, len(valid_entities), train_rel_names, valid_entities.names)
    else:
        valid_graph = train_graph

    if spec.filter_mode == FILTER_INFERENCE_ALL:
        known = torch.cat([inference, valid, test])
        valid_filter, test_filter = known, known
    elif spec.filter_mode == FILTER_SPLIT_GRAPH:
        valid_filter = torch.cat([valid_graph.triples, valid])
        test_filter = torch.cat([inference, test])
    else:
        raise ValueError(f"{spec.name}: filter mode {spec.filter_mode!r} does not apply to an inductive dataset")
    return {"train": SplitSpec(train_graph, train, train), "valid": SplitSpec(valid_graph, valid, valid_filter),
            "test": SplitSpec(inf_graph, test, test_filter)}


_BUILDERS: dict[str, Callable[[DatasetSpec, _Reader], Splits]] = {
    TRANSDUCTIVE: _transductive, FB15K237: _fb15k237, WN18RR: _wn18rr, GRAIL: _grail, INDUCTIVE: _inductive,
}


def build_splits(spec: DatasetSpec, blobs: RawBlobs) -> tuple[Splits, LoadReport]:
    """Parse the raw files of ``spec`` into its three splits and the record of what each line became
    (see the table above for the rules)."""
    read = _Reader(spec, blobs)
    splits = _BUILDERS[spec.family](spec, read)
    for split, s in splits.items():
        if len(s.graph.triples) == 0:
            raise RawFormatError(f"{spec.name}: the {split} split's fact graph has no triples")
    return splits, read.report()
