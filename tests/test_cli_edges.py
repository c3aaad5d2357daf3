"""What a new user met first (issue 19, new-user findings), on the real command line and real files:

* every one-line error carries its command's prefix (``are-search launch: error: ...``), as argparse's own do, and
  names values by their option (``--dataset``), not the API's ``options: key 'dataset'``;
* ``--checkpoint`` says what it takes;
* a path we write is made only where its parent exists: a storage, a report folder and an export folder in a
  missing folder are one line naming that folder, and nothing is created; a launch checks its storage before it
  loads anything;
* a failed download is one line naming the URL and the reason (a refused local port, a missing ``file://``
  source, an HTTP 404 from a local server), for datasets' files, checkpoints and relation texts alike.
"""
from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import pytest

from are_model.data.download import FetchError, fetch_url
from search.cli import main


def _run(capsys, *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().err


@pytest.mark.parametrize("argv, line", [
    (["launch", "--dataset", "Metafam", "--checkpoint", "fusion", "--trials", "0"],
     "are-search launch: error: argument --trials: expected a positive integer, got 0 (see --help)"),
    (["launch", "--dataset", "NoSuch", "--checkpoint", "fusion"],
     "are-search launch: error: --dataset: unknown dataset 'NoSuch' (`are-search datasets` lists every known dataset)"),
    (["launch", "--dataset", "Metafam", "--checkpoint", "fusion", "--soft-high", "5", "--weight-cap", "2"],
     "are-search launch: error: --soft-high and --weight-cap: soft_high 5 is above weight_cap 2; a weight's first "
     "upper bound may not pass its cap"),
    (["campaign", "launch", "--checkpoint", "fusion"],
     "are-search campaign launch: error: --datasets or --group is required"),
    (["launch", "--checkpoint", "fusion"], "are-search launch: error: launch needs --dataset (or a study spec file)"),
])
def test_one_line_errors_carry_the_command_and_name_options(argv, line, tmp_path, capsys):
    with pytest.raises(SystemExit) if "--trials" in argv and "0" in argv else _nothing():
        status, err = _run(capsys, *argv, "--storage", str(tmp_path / "s.db"))
        assert status == 2
    if "--trials" in argv and "0" in argv:
        err = capsys.readouterr().err
    assert err == line + "\n"
    assert not (tmp_path / "s.db").exists()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_checkpoint_says_what_it_takes(capsys):
    for command in ("launch", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--checkpoint PATH|NAME an ARE checkpoint: a .pth file, or a known name" in text, text


def test_a_storage_in_a_missing_folder_is_refused_before_anything_loads(tmp_path, capsys):
    db = tmp_path / "missing" / "dir" / "x.db"
    cache = tmp_path / "cache"  # a dataset loaded, or a checkpoint resolved, would fill it
    status, err = _run(capsys, "launch", "--dataset", "Metafam", "--checkpoint", "fusion", "--trials", "2",
                       "--storage", str(db), "--cache-dir", str(cache))
    assert status == 2 and not cache.exists()
    assert err == (f"are-search launch: error: cannot create storage sqlite:///{db}: folder {tmp_path / 'missing'} "
                   "does not exist (only the storage file's own folder is made)\n")
    assert not (tmp_path / "missing").exists()
    status, err = _run(capsys, "campaign", "launch", "--datasets", "Metafam", "--checkpoint", "fusion",
                       "--storage", f"journal:{tmp_path / 'missing' / 'dir' / 'x.log'}")
    assert status == 2 and "folder " + str(tmp_path / "missing") + " does not exist" in err, err
    assert not (tmp_path / "missing").exists()
    # checked before torch is even imported (the slow part of a launch's start on a loaded machine)
    code = ("import sys\nfrom search.cli import main\n"
            f"status = main(['launch', '--dataset', 'Metafam', '--checkpoint', 'fusion', '--storage', {str(db)!r}])\n"
            "print(status, 'torch' in sys.modules)\n")
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.stdout.split() == ["2", "False"], (run.stdout, run.stderr)


def test_an_export_folder_is_made_only_where_its_parent_exists(tmp_path, capsys):
    out = tmp_path / "missing" / "flags"
    status, err = _run(capsys, "export", "--all", str(out), "--storage", str(tmp_path / "none.db"))
    assert status == 2
    assert err == (f"are-search export: error: --all {out}: folder {tmp_path / 'missing'} does not exist (only the "
                   "last folder of a path is made)\n")
    assert not (tmp_path / "missing").exists()


def _refused_url() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}/file.txt"


def test_a_failed_download_is_one_line_naming_the_url_and_the_reason(tmp_path):
    refused = _refused_url()
    with pytest.raises(FetchError) as error:
        fetch_url(refused, tmp_path / "out.txt", retries=0)
    assert str(error.value) == f"cannot download {refused}: Connection refused"
    missing = (tmp_path / "none.txt").as_uri()
    with pytest.raises(FetchError) as error:
        fetch_url(missing, tmp_path / "out.txt")
    assert str(error.value) == f"cannot download {missing}: No such file or directory"

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/absent.txt"
        with pytest.raises(FetchError) as error:
            fetch_url(url, tmp_path / "out.txt", retries=0)
        assert str(error.value) == f"cannot download {url}: HTTP 404 File not found"
    finally:
        server.shutdown()
    assert not (tmp_path / "out.txt").exists()


def test_checkpoint_and_relation_text_downloads_say_the_same(tmp_path):
    from are_model.text.relation_texts import _download
    from search.inputs.checkpoints import CheckpointDownloadError, KnownCheckpoint, download_checkpoint

    refused = _refused_url()
    entry = KnownCheckpoint("mine", refused, "0" * 64, "a checkpoint served nowhere")
    with pytest.raises(CheckpointDownloadError) as error:
        download_checkpoint(entry, tmp_path)
    assert str(error.value) == f"cannot download checkpoint 'mine' from {refused}: Connection refused"
    with pytest.raises(RuntimeError) as error:
        _download(refused, tmp_path / "texts.json")
    assert str(error.value).startswith(f"could not download relation texts from {refused}: Connection refused ("), \
        str(error.value)
