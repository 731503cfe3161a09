"""pst-yolo convert on files a user can produce or break, and its one writer contract: a unique temporary name
beside out= (never a fixed OUT.tmp a user's file could have), nothing left behind, clear errors."""

from __future__ import annotations

import os

import pytest

from helpers import FIXTURES
from pst_yolo.integration import authors

SRC = FIXTURES / "authors_yolo11n_pst.pt"


def _bad_files(root) -> dict:
    whole = SRC.read_bytes()
    files = {
        "text": b"this is not a checkpoint\n",
        "empty": b"",
        "truncated": whole[: len(whole) // 2],
        "random": os.urandom(4096),
        "a pickle of nothing": b"\x80\x04K\x01.",
    }
    out = {}
    for name, data in files.items():
        out[name] = root / f"{name.replace(' ', '_')}.pt"
        out[name].write_bytes(data)
    return out


def test_convert_refuses_files_that_are_no_checkpoint_with_one_line(tmp_path, cli):
    for name, path in _bad_files(tmp_path).items():
        err = cli.error("convert", path, tmp_path / "out.pt", match=f"{path.name} (is|cannot)")
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, name
    assert not (tmp_path / "out.pt").exists()


def test_convert_keeps_a_users_out_tmp_and_leaves_nothing_behind(tmp_path, cli):
    out = tmp_path / "ours.pt"
    mine = tmp_path / "ours.pt.tmp"
    mine.write_text("the user's own file")
    assert cli("convert", SRC, out) == 0
    assert mine.read_text() == "the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours.pt", "ours.pt.tmp"]


def test_convert_into_an_existing_folder_is_a_clear_error(tmp_path, cli):
    folder = tmp_path / "out.pt"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    err = cli.error("convert", SRC, folder, "overwrite=true", match="out=.*out.pt is a folder")
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pt"] and (folder / "keep.txt").read_text() == "x"


def test_convert_onto_its_own_source_is_refused(tmp_path, cli):
    src = tmp_path / "theirs.pt"
    src.write_bytes(SRC.read_bytes())
    cli.error("convert", src, src, "overwrite=true", match="is the input")
    assert src.read_bytes() == SRC.read_bytes()


def test_a_failed_write_leaves_neither_out_nor_a_temporary_file(tmp_path, monkeypatch):
    import torch

    def disk_full(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        authors.convert(SRC, tmp_path / "ours.pt")
    assert list(tmp_path.iterdir()) == []
