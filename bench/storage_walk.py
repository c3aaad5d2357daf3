"""How a storage URL travels from ``search.launch`` to Optuna: parses, opens, and the call path.

Runs one real 1-trial fixed-mode launch (Metafam, fusion.pth, a fresh SQLite file) under a profiler hook and
counts, in this process:

* ``parses`` -- calls of ``StorageURL.parse`` on text (a StorageURL passed on is not parsed again);
* ``opens`` -- storages constructed (Optuna's ``RDBStorage`` or ``JournalStorage``, ours included);
* ``path`` -- the frames of are-search between ``launch`` and the first storage constructor: how many calls,
  in how many modules, and how often the path returns to a module it had already left.

Prints one JSON line and a short table. Usage (the data roots as for the tests)::

    python bench/storage_walk.py [--dataset Metafam] [--checkpoint fusion]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="Metafam")
    parser.add_argument("--checkpoint", default="fusion")
    from search.cli import add_root_arguments

    add_root_arguments(parser)
    args = parser.parse_args()

    import optuna

    import search
    from search.options import LoadOptions
    from search.storage import StorageURL

    options = LoadOptions.resolve(data_root=args.data_root, text_root=args.text_root,
                                  checkpoint_root=args.checkpoint_root, cache_dir=args.cache_dir,
                                  device="cpu", offline=args.offline)
    counts = {"parses": 0, "opens": 0}
    paths: list[list[tuple[str, str]]] = []
    parse = StorageURL.parse.__func__

    def counting_parse(cls, text, *rest, **kwargs):
        if not isinstance(text, StorageURL):
            counts["parses"] += 1
        return parse(cls, text, *rest, **kwargs)

    StorageURL.parse = classmethod(counting_parse)
    constructors = (optuna.storages.RDBStorage.__init__, optuna.storages.JournalStorage.__init__)
    codes = {c.__code__ for c in constructors}

    def hook(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            counts["opens"] += 1
            if True:
                stack, f = [], frame.f_back
                while f is not None:
                    module = f.f_globals.get("__name__", "")
                    if module.split(".")[0] == "search":
                        stack.append((module, f.f_code.co_name))
                    f = f.f_back
                paths.append(stack[::-1])

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 's.db'}"
        sys.setprofile(hook)
        try:
            search.launch(dataset=args.dataset, checkpoint=args.checkpoint, mode="fixed", trials=1, storage=url,
                          pruner="none", options=options)
        finally:
            sys.setprofile(None)
    walks = []
    for path in paths:
        start = next((k for k, (_, name) in enumerate(path) if name == "launch"), 0)
        path = path[start:]
        modules, returns, left = [], 0, set()
        for module, _ in path:
            if modules and module != modules[-1]:
                left.add(modules[-1])
                if module in left:
                    returns += 1
            modules.append(module)
        walks.append({"calls": len(path), "modules": len(set(modules)), "returns_to_a_module_left": returns,
                      "path": [f"{m}.{n}" for m, n in path]})
    frames = {step for walk in walks for step in walk["path"]}
    result = {"parses": counts["parses"], "opens": counts["opens"], "distinct_calls": len(frames),
              "distinct_modules": len({step.rsplit(".", 1)[0] for step in frames}), "walks": walks}
    print(json.dumps(result))
    print(f"{'parses of the storage text':<40}{counts['parses']}\n{'storages opened':<40}{counts['opens']}\n"
          f"{'calls that carry it (all opens)':<40}{len(frames)} in {result['distinct_modules']} modules",
          file=sys.stderr)
    for k, walk in enumerate(walks):
        print(f"open {k + 1}: {walk['calls']} calls through {walk['modules']} modules, "
              f"{walk['returns_to_a_module_left']} returns to a module already left", file=sys.stderr)
        for step in walk["path"]:
            print("  " + step, file=sys.stderr)


if __name__ == "__main__":
    main()
