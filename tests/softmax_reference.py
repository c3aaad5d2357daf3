"""What the softmax fusion of fusion.pth computes on Metafam, recorded before ``learnable_free`` existed.

``fixtures/softmax-fusion-3e8c783.json`` holds the numbers :func:`measure` gave on commit 3e8c783 (the last
commit before the free fusion was added to ``are_model``), as text (each float32 written as the shortest
decimal that reads back as the same float), run there as::

    python tests/softmax_reference.py tests/fixtures/softmax-fusion-3e8c783.json

``tests/test_free_fusion.py`` runs :func:`measure` again with the code of today and asserts the softmax mode
(forward scores, a frozen-body fine-tune, a fine-tune of the body) has not changed: the learned logits bit for
bit, the rest to float32 precision (the CPU inference kernels of 687e667 sum in another order). The MiniLM relation vectors are stored in the file and reused, so the comparison does not
depend on the text encoder; everything runs on one CPU thread (reductions split across threads may round
differently).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import torch

REFERENCE = Path(__file__).resolve().parent / "fixtures" / "softmax-fusion-3e8c783.json"
#: The state-dict keys of the body-trained run that are compared (one per trained module kind; the first
#: :data:`BODY_VALUES` values of each).
BODY_KEYS = ("combiner.fc.weight", "entity_model.mlp.2.weight", "prompt_enhancer.context_fusion.2.bias",
             "similarity_enhancer.temperature", "relation_model.layers.5.linear.bias")
BODY_VALUES = 128


def measure(checkpoint: Path, data_root: Path, text_root: Path, cache_dir: Path,
            text_vectors: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The softmax-mode numbers of fusion.pth on Metafam's training graph (one CPU thread).

    text_vectors: Metafam's train relation vectors [R', 64] (None: MiniLM computes them). Returns a dict of
    tensors: ``text_vectors``, ``scores`` [4, 9] of an eval forward, ``frozen_logits`` / ``frozen_losses``
    after 2 frozen-body steps from 0.5/0.5, ``body_logits`` / ``body_losses`` / ``body.<key>`` (flattened, the
    first :data:`BODY_VALUES` values) after 2 steps that also train the body.
    """
    from are_model.checkpoint import load_checkpoint
    from are_model.data import load_dataset
    from are_model.model import prepare_graph
    from are_model.pipeline import TextOptions, prepare_split
    from are_model.train import FineTuneConfig, fine_tune, make_batch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset = load_dataset("Metafam", data_root, cache_dir=cache_dir, download=False)
        train = prepare_split(dataset, "train", text=TextOptions(root=str(text_root), encoder="minilm",
                                                                  cache_dir=str(cache_dir), download=False))
        if text_vectors is None:
            text_vectors = train.graph.text_embeddings.clone()
        graph = train.graph
        train = dataclasses.replace(train, graph=prepare_graph(graph.edge_index, graph.edge_type, graph.num_nodes,
                                                               graph.num_relations, text_vectors))
        out = {"text_vectors": text_vectors}
        model, _ = load_checkpoint(checkpoint)
        generator = torch.Generator().manual_seed(11)
        batch = make_batch(train.triples[:4], train.filters, train.graph.num_nodes, train.graph.num_relations, 8,
                           generator)
        with torch.no_grad():
            out["scores"] = model(train.graph, batch)
        config = FineTuneConfig(epochs=1, batches_per_epoch=2, batch_size=4, num_negatives=8, fusion_lr=0.05, seed=3)
        model.use_learnable_fusion((0.5, 0.5))
        result = fine_tune(model, train, config)
        out["frozen_logits"] = model.fusion_weights_logits.detach().clone()
        out["frozen_losses"] = torch.tensor(result.losses, dtype=torch.float64)
        model, _ = load_checkpoint(checkpoint)
        result = fine_tune(model, train, dataclasses.replace(config, body_lr=1e-3))
        out["body_logits"] = model.fusion_weights_logits.detach().clone()
        out["body_losses"] = torch.tensor(result.losses, dtype=torch.float64)
        state = model.state_dict()
        out.update({f"body.{key}": state[key].detach().flatten()[:BODY_VALUES].clone() for key in BODY_KEYS})
        return out
    finally:
        torch.set_num_threads(threads)


def save(numbers: dict[str, torch.Tensor], target: Path) -> None:
    """Write ``numbers`` as JSON text: name -> {dtype, shape, values (flat, exact)}."""
    content = {name: {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                      "values": [float(v) for v in t.flatten().tolist()]} for name, t in numbers.items()}
    lines = [f"{json.dumps(name)}: {json.dumps(entry)}" for name, entry in content.items()]  # a line per tensor
    target.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")


def load(source: Path = REFERENCE) -> dict[str, torch.Tensor]:
    """The tensors :func:`save` wrote, with their dtypes and shapes."""
    content = json.loads(source.read_text(encoding="utf-8"))
    return {name: torch.tensor(entry["values"], dtype=getattr(torch, entry["dtype"])).reshape(entry["shape"])
            for name, entry in content.items()}


if __name__ == "__main__":
    target = Path(sys.argv[1])
    env = os.environ
    numbers = measure(Path(env["ARE_CHECKPOINT_ROOT"]) / "fusion.pth", Path(env["ARE_DATA_ROOT"]),
                      Path(env["ARE_TEXT_ROOT"]), Path(env["ARE_CACHE_DIR"]))
    save(numbers, target)
    print(f"wrote {target}: {', '.join(f'{k} {tuple(v.shape)}' for k, v in numbers.items())}")
