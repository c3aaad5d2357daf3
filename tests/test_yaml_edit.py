"""search.flags.yaml_edit: every YAML shape a user's flags.yaml can hold the fusion keys in, on real files.

Each shape is either written byte-exactly (every other byte kept) or refused in one line naming the
file, the line, the key and why, with the file untouched.
"""
from __future__ import annotations

import codecs
import os
from pathlib import Path

import numpy as np
import pytest
import yaml as pyyaml

from search.flags import yaml_edit
from search.errors import FlagsError
from search.flags.yaml_edit import COMMENT_MARKER, FlagsEdit, edit_flags, write_flags, yaml_float
from search.flags.yamlio import load_yaml_text

#: Two weights, as a fixed-mode export writes them (plus use_learnable_fusion in the export tests).
W = {"similarity_enhancer_weight": 0.25, "prompt_enhancer_weight": 0.75}
C = f"{COMMENT_MARKER} C"

# (id, file content, expected content after write_flags(path, W, comment="C"))
SHAPES = [
    ("empty value", "run: x\nsimilarity_enhancer_weight:\nprompt_enhancer_weight: 0.5\n",
     f"run: x\n{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("empty value, comment", "similarity_enhancer_weight:   # w_sim\nprompt_enhancer_weight: 0.5\n",
     f"{C}\nsimilarity_enhancer_weight: 0.25   # w_sim\nprompt_enhancer_weight: 0.75\n"),
    ("empty value at end of file", "run: x\nsimilarity_enhancer_weight:",
     f"run: x\n{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("empty value after space", "similarity_enhancer_weight :\nprompt_enhancer_weight: 1\n",
     f"{C}\nsimilarity_enhancer_weight : 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("tilde", "similarity_enhancer_weight: ~\nprompt_enhancer_weight: ~  # off\n",
     f"{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75  # off\n"),
    ("null", "similarity_enhancer_weight: null\nprompt_enhancer_weight: Null\n",
     f"{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("quoted values", "similarity_enhancer_weight: '0.2'\nprompt_enhancer_weight: \"0.8\"  # q\nk: '1'\n",
     f"{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75  # q\nk: '1'\n"),
    ("trailing comments", "similarity_enhancer_weight: 0.2 # a\nprompt_enhancer_weight: 0.8      # b: c\n",
     f"{C}\nsimilarity_enhancer_weight: 0.25 # a\nprompt_enhancer_weight: 0.75      # b: c\n"),
    ("value on the next line", "similarity_enhancer_weight:\n  0.2\nprompt_enhancer_weight:  # c\n    0.8\nrun: x\n",
     f"{C}\nsimilarity_enhancer_weight:\n  0.25\nprompt_enhancer_weight:  # c\n    0.75\nrun: x\n"),
    ("multi-line plain value", "similarity_enhancer_weight: 0.2\n  0.3\nprompt_enhancer_weight: 0.8\n",
     f"{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("literal block scalar", "similarity_enhancer_weight: |\n  0.2\n\n# after\nprompt_enhancer_weight: 0.8\n",
     f"{C}\nsimilarity_enhancer_weight: 0.25\n\n# after\nprompt_enhancer_weight: 0.75\n"),
    ("folded block scalar, header comment", "similarity_enhancer_weight: >- # hc\n  0.2\n  0.3\nrun: x\n"
     "prompt_enhancer_weight: 0.8\n",
     f"{C}\nsimilarity_enhancer_weight: 0.25 # hc\nrun: x\nprompt_enhancer_weight: 0.75\n"),
    ("keep block scalar at end of file", "prompt_enhancer_weight: 0.8\nsimilarity_enhancer_weight: |+\n  0.2\n\n",
     f"{C}\nprompt_enhancer_weight: 0.75\nsimilarity_enhancer_weight: 0.25\n\n"),
    ("quoted keys", "\"similarity_enhancer_weight\": 0.2\n'prompt_enhancer_weight': 0.8\n",
     f"{C}\n\"similarity_enhancer_weight\": 0.25\n'prompt_enhancer_weight': 0.75\n"),
    ("explicit keys", "run: x\n? similarity_enhancer_weight\n: 0.2\n? prompt_enhancer_weight  # no value\nk: 1\n",
     f"run: x\n{C}\n? similarity_enhancer_weight\n: 0.25\n? prompt_enhancer_weight  # no value\n: 0.75\nk: 1\n"),
    ("explicit key at end of file", "run: x\n? similarity_enhancer_weight\n: 0.2\n? prompt_enhancer_weight",
     f"run: x\n{C}\n? similarity_enhancer_weight\n: 0.25\n? prompt_enhancer_weight\n: 0.75"),
    ("anchor and alias between the flags", "similarity_enhancer_weight: &w 0.5\nprompt_enhancer_weight: *w\n",
     f"{C}\nsimilarity_enhancer_weight: &w 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("alias of another key's value", "base: &b 0.4\nsimilarity_enhancer_weight: *b\nprompt_enhancer_weight: *b\n",
     f"base: &b 0.4\n{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("alias as key", "name: &k prompt_enhancer_weight\n*k : 0.3\nsimilarity_enhancer_weight: 0.1\n",
     f"name: &k prompt_enhancer_weight\n{C}\n*k : 0.75\nsimilarity_enhancer_weight: 0.25\n"),
    ("tag and anchor", "similarity_enhancer_weight: !!str &w 0.2\nprompt_enhancer_weight: !!float 1\n",
     f"{C}\nsimilarity_enhancer_weight: &w 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("anchor or tag without value", "similarity_enhancer_weight: &w\nprompt_enhancer_weight: !!null\nrun: x\n",
     f"{C}\nsimilarity_enhancer_weight: &w 0.25\nprompt_enhancer_weight: 0.75\nrun: x\n"),
    ("merge key", "base: &b {similarity_enhancer_weight: 0.9, k: 1}\n<<: *b\n",
     f"base: &b {{similarity_enhancer_weight: 0.9, k: 1}}\n<<: *b\n{C}\n"
     "similarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("document start", "%YAML 1.2\n--- # flags\nrun: x\nsimilarity_enhancer_weight: 0.2\n",
     f"%YAML 1.2\n--- # flags\nrun: x\n{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("document start and end", "---\nrun: x\n...\n# trailing\n",
     f"---\nrun: x\n{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n...\n# trailing\n"),
    ("empty document", "---\n...\n", f"---\n{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n...\n"),
    ("CRLF", "run: x\r\nsimilarity_enhancer_weight:\r\nblock: |\r\n  a\r\n  b\r\n",
     f"run: x\r\n{C}\r\nsimilarity_enhancer_weight: 0.25\r\nblock: |\r\n  a\r\n  b\r\nprompt_enhancer_weight: 0.75\r\n"),
    ("CRLF block scalar", "similarity_enhancer_weight: |\r\n  0.2\r\nrun: x\r\n",
     f"{C}\r\nsimilarity_enhancer_weight: 0.25\r\nrun: x\r\nprompt_enhancer_weight: 0.75\r\n"),
    ("CR", "run: x\rsimilarity_enhancer_weight: 0.1\r",
     f"run: x\r{C}\rsimilarity_enhancer_weight: 0.25\rprompt_enhancer_weight: 0.75\r"),
    ("indented top level", "  run: x\n  similarity_enhancer_weight: 0.2\n  nested:\n      a: 1\n",
     f"  run: x\n  {C}\n  similarity_enhancer_weight: 0.25\n  nested:\n      a: 1\n  prompt_enhancer_weight: 0.75\n"),
    ("flow mapping", "{run: x, similarity_enhancer_weight: 0.2}\n",
     f"{C}\n{{run: x, similarity_enhancer_weight: 0.25, prompt_enhancer_weight: 0.75}}\n"),
    ("multi-line flow mapping, trailing comma", "{\n  run: x,\n  similarity_enhancer_weight: 0.2, # c\n}\n",
     f"{C}\n{{\n  run: x,\n  similarity_enhancer_weight: 0.25, prompt_enhancer_weight: 0.75, # c\n}}\n"),
    ("empty flow mapping", "{}  # nothing yet\n",
     f"{C}\n{{similarity_enhancer_weight: 0.25, prompt_enhancer_weight: 0.75}}  # nothing yet\n"),
    ("flow mapping, key without value", "{run: x, similarity_enhancer_weight}\n",
     f"{C}\n{{run: x, similarity_enhancer_weight: 0.25, prompt_enhancer_weight: 0.75}}\n"),
    ("flow mapping, empty values", "{similarity_enhancer_weight: , prompt_enhancer_weight: }\n",
     f"{C}\n{{similarity_enhancer_weight: 0.25 , prompt_enhancer_weight: 0.75 }}\n"),
    ("flow mapping, 'key:' last", "{run: x, k:}\n",
     f"{C}\n{{run: x, k:, similarity_enhancer_weight: 0.25, prompt_enhancer_weight: 0.75}}\n"),
    ("only comments", "# just a comment\n# another", f"# just a comment\n# another\n{C}\n"
     "similarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("empty file", "", f"{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("previous export comment", f"run: x\n{COMMENT_MARKER} old\nsimilarity_enhancer_weight: 0.2\n{COMMENT_MARKER} x",
     f"run: x\n{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("marker line inside a block scalar is content",
     f"note: |\n  {COMMENT_MARKER} keep me\nsimilarity_enhancer_weight: 0.1\n",
     f"note: |\n  {COMMENT_MARKER} keep me\n{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
    ("nested flag keys are not the top level", "model:\n  similarity_enhancer_weight: 0.9\n",
     f"model:\n  similarity_enhancer_weight: 0.9\n{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n"),
]


def _snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


def _aged(path: Path, content: bytes) -> tuple[bytes, int, list[str]]:
    """Write ``content`` with an mtime a rewrite could not reproduce; returns the snapshot."""
    path.write_bytes(content)
    old = path.stat().st_mtime_ns - 5_000_000_000
    os.utime(path, ns=(old, old))
    return _snapshot(path)


def _reads_back(text: str, flags: dict) -> None:
    """Both readers (the policy's YAML 1.2, PyYAML's 1.1 as the model code) read ``flags`` exactly."""
    for loaded in (load_yaml_text(text, "x"), pyyaml.safe_load(text)):
        for key, value in flags.items():
            assert type(loaded[key]) is type(value) and loaded[key] == value, (key, loaded[key])


@pytest.mark.parametrize("content, expected", [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_every_shape_is_written_in_place(tmp_path, content, expected):
    path = tmp_path / "flags.yaml"
    path.write_bytes(content.encode())
    edit = write_flags(path, W, comment="C")
    assert path.read_bytes() == expected.encode()
    assert edit.new == expected.encode() and edit.old == content.encode()
    _reads_back(expected, W)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.yaml"]  # no temp file left
    # a second export edits its own output: only the comment and values change
    write_flags(path, {"similarity_enhancer_weight": 0.5, "prompt_enhancer_weight": 0.5}, comment="D")
    again = path.read_bytes().decode()
    assert again == expected.replace("0.25", "0.5").replace("0.75", "0.5").replace(C, f"{COMMENT_MARKER} D")


def test_byte_order_mark_is_kept(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_bytes(codecs.BOM_UTF8 + b"run: x\nsimilarity_enhancer_weight: 0.2\n")
    write_flags(path, W, comment="C")
    assert path.read_bytes() == codecs.BOM_UTF8 + (
        f"run: x\n{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n".encode()
    )


def test_bool_keeps_the_files_spelling(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("use_learnable_fusion: true    # 5.3\nuse_prompt_enhancer: TRUE\n")
    write_flags(path, {"use_learnable_fusion": False, "fusion_lr": 1e-05}, comment="C")
    assert path.read_text() == f"{C}\nuse_learnable_fusion: false    # 5.3\nuse_prompt_enhancer: TRUE\nfusion_lr: 1.0e-05\n"
    write_flags(path, {"use_learnable_fusion": np.bool_(True)}, comment="C")
    assert path.read_text().splitlines()[1] == "use_learnable_fusion: true    # 5.3"
    path.write_text("use_learnable_fusion: 'yes'\n")
    write_flags(path, {"use_learnable_fusion": True}, comment="C")
    assert path.read_text() == f"{C}\nuse_learnable_fusion: True\n"


def test_floats_read_back_the_same_in_yaml_1_1_and_1_2(tmp_path):
    values = [0.2, 1e-05, 3e-4, 1.0, 0.0, 1e16, 2.5e-300, 0.212346]
    assert [yaml_float(v) for v in values] == [
        "0.2", "1.0e-05", "0.0003", "1.0", "0.0", "1.0e+16", "2.5e-300", "0.212346",
    ]
    path = tmp_path / "flags.yaml"
    flags = {f"k{i}": v for i, v in enumerate(values)}
    flags["np"] = np.float64(0.2)
    write_flags(path, flags, comment="C")
    _reads_back(path.read_text(), {k: float(v) for k, v in flags.items()})
    assert "numpy" not in path.read_text() and "!!" not in path.read_text()


# (id, content, line named, words that must be in the message)
REFUSED = [
    ("duplicate key", "run: ultra\nrun: semma\n", 2, "duplicate key 'run'"),
    ("duplicate flag key", "similarity_enhancer_weight: 0.1\n\"similarity_enhancer_weight\": 0.2\n", 2,
     "duplicate key 'similarity_enhancer_weight'"),
    ("two documents", "run: x\n---\nrun: y\n", 2, "a second YAML document starts here"),
    ("top-level list", "- run: ultra\n- k: 0\n", 1, "the top level is a list"),
    ("top-level scalar", "ultra\n", 1, "the top level is a single value"),
    ("top-level null", "~\n", 1, "the top level is a single value"),
    ("flag holding a mapping", "run: ultra\nprompt_enhancer_weight:\n  a: 1\n", 2,
     "key 'prompt_enhancer_weight' holds a mapping, not a single value"),
    ("flag holding a list", "similarity_enhancer_weight: [0.2]\n", 1,
     "key 'similarity_enhancer_weight' holds a list, not a single value"),
    ("anchor used by another key", "similarity_enhancer_weight: &w 0.2\nother:\n  - *w\n", 1,
     "key 'similarity_enhancer_weight': its value &w is also used at line 3 (*w)"),
    ("tab as indentation", "run: ultra\n\tk: 0\n", 2, "write spaces instead of the tab"),
    ("tab before a value", "run: ultra\nsimilarity_enhancer_weight:\t0.2\n", 2, "write spaces instead of the tab"),
    # the line where the quote opens, or the key without its ':' (not the line after, where the scanner gave up:
    # this file has no line 4)
    ("unclosed quote", 'run: ultra\nLLM: "gpt4o\nk: 0\n', 2,
     "not valid YAML: while scanning a quoted scalar, found unexpected end of stream"),
    ("key without its colon", "run: ultra\nk\nm: 0\n", 2,
     "not valid YAML: while scanning a simple key, could not find expected ':'"),
    ("list never closed", "run: ultra\nprompt_enhancer_weight: [0.7\nk: 0\nm: 1\n", 2,
     "not valid YAML: while parsing a flow sequence, expected ',' or ']', but got ':'"),
    ("flag key the readers disagree on", "{similarity_enhancer_weight: 0.1, prompt_enhancer_weight:}\n", 1,
     "key 'prompt_enhancer_weight' is read differently by YAML 1.2 and by PyYAML"),
    ("unknown tag", "run: !python/name:os.system x\n", 1, "not valid YAML"),
]


@pytest.mark.parametrize("content, line, words", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refusals_name_file_line_and_why_and_touch_nothing(tmp_path, content, line, words):
    path = tmp_path / "flags.yaml"
    before = _aged(path, content.encode())
    with pytest.raises(FlagsError) as info:
        write_flags(path, W, comment="C")
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and words in message, message
    assert "\n" not in message and "report" not in message
    assert _snapshot(path) == before


def test_not_utf8_and_folders_are_refused(tmp_path):
    path = tmp_path / "flags.yaml"
    before = _aged(path, b"run: \xff\n")
    with pytest.raises(FlagsError, match=r"flags.yaml: not UTF-8 text \(byte 5\)$"):
        write_flags(path, W, comment="C")
    assert _snapshot(path) == before
    with pytest.raises(FlagsError, match=r"missing/flags.yaml: folder .*missing does not exist$"):
        write_flags(tmp_path / "missing" / "flags.yaml", W, comment="C")
    with pytest.raises(FlagsError, match=r"is a folder, not a flags file$"):
        write_flags(tmp_path, W, comment="C")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.yaml"]


@pytest.mark.parametrize("flags, words", [
    ({"fusion_lr": float("nan")}, "key 'fusion_lr': expected a bool or a finite number, got nan"),
    ({"fusion_lr": "abc"}, "key 'fusion_lr': expected a bool or a finite number, got 'abc'"),
    ({"bad key": 0.1}, "cannot write key 'bad key': use letters, digits and _ . -"),
    ({"null": 0.1}, "cannot write key 'null': YAML reads it as another value"),
    ({}, "no key to write"),
])
def test_values_that_cannot_be_written(tmp_path, flags, words):
    path = tmp_path / "flags.yaml"
    before = _aged(path, b"run: x\n")
    with pytest.raises(FlagsError) as info:
        write_flags(path, flags, comment="C")
    assert str(info.value) == f"{path}: {words}"
    assert _snapshot(path) == before


def test_verifier_names_the_key_it_could_not_place(tmp_path, monkeypatch):
    """An edit that would go wrong (here forced) is refused naming the key, never 'please report'."""
    real = yaml_edit._value_edit

    def quoting(text, key, value, name, literal, *args):
        edit = real(text, key, value, name, literal, *args)
        return edit if name != "prompt_enhancer_weight" else yaml_edit._Edit(edit.start, edit.end, "'0.75'", name)

    path = tmp_path / "flags.yaml"
    before = _aged(path, b"run: x\nsimilarity_enhancer_weight: 0.2\nprompt_enhancer_weight: 0.8\n")
    monkeypatch.setattr(yaml_edit, "_value_edit", quoting)
    with pytest.raises(FlagsError) as info:
        write_flags(path, W, comment="C")
    assert str(info.value) == (f"{path}:3: cannot write key 'prompt_enhancer_weight' in place: "
                               "YAML 1.2 would read it as '0.75', not 0.75; set it by hand")
    assert _snapshot(path) == before

    def breaking(text, key, value, name, literal, *args):
        edit = real(text, key, value, name, literal, *args)
        return edit if name != "similarity_enhancer_weight" else yaml_edit._Edit(edit.start, edit.end, "[0.25", name)

    monkeypatch.setattr(yaml_edit, "_value_edit", breaking)
    with pytest.raises(FlagsError) as info:
        write_flags(path, W, comment="C")
    message = str(info.value)
    assert message.startswith(f"{path}:2: cannot write key 'similarity_enhancer_weight' in place: "
                              "the edited file would not read as YAML") and "\n" not in message
    assert _snapshot(path) == before


def test_symlink_target_is_edited_and_keeps_its_mode(tmp_path):
    real = tmp_path / "real.yaml"
    real.write_text("run: x\n")
    real.chmod(0o640)
    link = tmp_path / "flags.yaml"
    link.symlink_to(real)
    write_flags(link, W, comment="C")
    assert link.is_symlink() and real.read_text() == f"run: x\n{C}\n" + (
        "similarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n")
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.yaml", "real.yaml"]


def test_edit_is_not_written_over_a_file_changed_since_it_was_read(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("run: x\n")
    edit = edit_flags(path, W, comment="C")
    assert isinstance(edit, FlagsEdit) and path.read_text() == "run: x\n"  # nothing written yet
    path.write_text("run: y\n")
    with pytest.raises(FlagsError, match=r"flags.yaml: changed since it was read; nothing written"):
        edit.write()
    assert path.read_text() == "run: y\n"
    new = edit_flags(tmp_path / "sub" / "flags.yaml", W, comment="C", make_folder=True)
    assert not (tmp_path / "sub").exists()
    new.write()
    assert (tmp_path / "sub" / "flags.yaml").read_text() == (
        f"{C}\nsimilarity_enhancer_weight: 0.25\nprompt_enhancer_weight: 0.75\n")
