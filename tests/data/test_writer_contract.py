"""One writer contract: every file pst-yolo writes goes through ``pst_yolo/data/writer.py`` (a unique temporary
name beside the target, one rename, no replacing of files pst-yolo did not write). This scan fails when a
module elsewhere in the package writes a file directly."""

from __future__ import annotations

import ast
import re

from helpers import REPO

PACKAGE = REPO / "pst_yolo"
WRITER = PACKAGE / "data" / "writer.py"

# Direct writes that are not files of the user's: (module, what the call writes), each with the reason.
EXEMPT = {
    ("pst_yolo/eval/speed.py", "/proc/self/clear_refs"),  # a kernel control file (resets the peak-RSS counter)
}
WRITING_CALLS = {"save", "imwrite", "savefig", "VideoWriter", "dump", "tofile", "copy", "copy2", "copyfile", "move"}
WRITING_MODULES = {"torch", "cv2", "json", "np", "numpy", "pickle", "yaml", "shutil", "onnx"}


def _mode(call: ast.Call) -> str:
    """The mode argument of an ``open(...)`` / ``Path.open(...)`` call ("r" if none or not a constant)."""
    args = call.args[1:2] if isinstance(call.func, ast.Name) else call.args[:1]
    for node in [*args, *(k.value for k in call.keywords if k.arg == "mode")]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
    return "r"


def direct_writes(source: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every call in ``source`` that writes a file without the writer module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        code = ast.get_source_segment(source, node) or name
        if name == "open" and re.search("[wax+]", _mode(node)):
            found.append((node.lineno, code))
        elif name in ("write_text", "write_bytes") and owner not in ("writer",) and isinstance(func, ast.Attribute):
            found.append((node.lineno, code))  # Path.write_text / write_bytes (the writer's own are plain names)
        elif name in WRITING_CALLS and owner in WRITING_MODULES and not (owner == "json" and name != "dump"):
            found.append((node.lineno, code))  # torch.save, cv2.imwrite, json.dump(obj, fh), np.save, ...
        elif name in ("savefig", "VideoWriter") and owner != "writer":
            found.append((node.lineno, code))  # fig.savefig(path), cv2.VideoWriter(path) (imported by name)
    return found


def test_the_scan_finds_each_kind_of_direct_write():
    """The scan itself: every way of writing a file it is meant to catch is caught (and reading is not)."""
    code = "\n".join(
        [
            "open(p, 'w')",
            "open(p, mode='ab')",
            "path.open('w', newline='')",
            "p.write_text('x')",
            "(d / 'a').write_bytes(b'')",
            "torch.save(obj, p)",
            "cv2.imwrite(str(p), img)",
            "json.dump(doc, fh)",
            "fig.savefig(p)",
            "cv2.VideoWriter(str(p), 1, 2.0, (3, 4))",
            "np.save(p, a)",
            "shutil.copy2(a, b)",
        ]
    )
    assert [line for line, _ in direct_writes(code)] == list(range(1, 13))
    harmless = "open(p)\nopen(p, 'rb')\njson.dumps(doc)\ntorch.load(p)\nwrite_text(p, 'x')\ncv2.imread(p)\nimg.copy()"
    assert direct_writes(harmless) == []


def test_no_module_outside_the_writer_writes_files_directly():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == WRITER:
            continue
        rel = path.relative_to(REPO).as_posix()
        for line, code in direct_writes(path.read_text()):
            if not any(rel == module and what in code for module, what in EXEMPT):
                offenders.append(f"{rel}:{line}: {code.splitlines()[0]}")
    assert not offenders, (
        "write files through pst_yolo.data.writer (write_text, write_json, write_csv, write_image, save_figure, "
        "save_torch, open_video), not directly:\n" + "\n".join(offenders)
    )


def test_a_write_uses_a_unique_temporary_name_and_leaves_nothing_on_failure(tmp_path):
    import pytest

    from pst_yolo.data.writer import WriterError, replace_file, write_text

    (tmp_path / "out.txt.tmp").write_text("mine")  # a fixed temporary name would have replaced this
    seen = []
    write_text(tmp_path / "out.txt", "new")

    def fail(tmp):
        seen.append(tmp)
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_file(tmp_path / "out.txt", fail)
    assert (tmp_path / "out.txt").read_text() == "new" and (tmp_path / "out.txt.tmp").read_text() == "mine"
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".out.txt.") and not seen[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "out.txt.tmp"]
    (tmp_path / "folder").mkdir()
    with pytest.raises(WriterError, match="is a folder"):
        write_text(tmp_path / "folder", "x")


def test_files_in_a_user_folder_are_replaced_only_while_ours_and_unchanged(tmp_path):
    import pytest

    from pst_yolo.data.writer import WriterError, check_owned_file, owns_file, record_files, write_text

    report = tmp_path / "report.md"
    report.write_text("the user's")
    with pytest.raises(WriterError, match="pst-yolo did not write it"):
        check_owned_file(report)
    assert check_owned_file(report, overwrite=True) == report
    write_text(report, "ours")
    record_files(tmp_path, "test", ["report.md"])
    assert owns_file(report) and check_owned_file(report) == report
    report.write_text("ours, edited")  # changed since: the user's now
    assert not owns_file(report)
    with pytest.raises(WriterError, match="changed since"):
        check_owned_file(report)
