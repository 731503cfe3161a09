"""How pst-yolo writes datasets and run folders without losing anything that is not its own.

Every command that writes a dataset (``synth``, ``synth task=classify``, ``coco2yolo``, the data ``bench``
generates) goes through :func:`dataset_writer`; every command that writes a run folder (``bench``, ``demo``,
``explain``, ``speed``, ``compare save_dir=``) through :func:`run_folder`. The rules:

- An empty ``out=`` is an error (it would mean the current directory).
- The target may not equal, contain or lie inside a source (paths compared after resolving symlinks and
  ``..``): a conversion in place would overwrite the images and JSON it reads.
- Each dataset records what it holds in ``.pst-yolo-manifest.json`` (every file with its size and a hash of
  its ends). A non-empty target without one is someone else's folder: it is refused unless
  ``overwrite=True``, and even then only files the manifest lists, unchanged since they were written, are
  ever deleted or replaced; every other file stays where it is, and a new file that would replace one of
  them is refused.
- A dataset is written into a temporary folder next to the target (``.NAME.partial-*``) and renamed into
  place at the end, so an interrupted run leaves either the old dataset or the new one, never a mix (the
  swap itself runs with Ctrl-C deferred).
- A lock file next to the target (``.NAME.pst-yolo-lock``) makes a second writer into the same target
  refuse while the first one runs.

Run folders are not renamed at the end: Ultralytics records their absolute path in what it writes there
(``args.yaml``, checkpoints). A numbered run folder (``runs/x``, ``runs/x2``, ...) is always a new folder;
an existing folder (``save_dir=``, ``exist_ok=True``) is used only if it is empty or a pst-yolo run folder.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

MANIFEST = ".pst-yolo-manifest.json"
MANIFEST_FORMAT = "pst-yolo/manifest/1"
PARTIAL_MARK = ".pst-yolo-partial"  # inside a temporary folder while it is being written
PathLike = Union[str, Path]


class WriterError(ValueError):
    """The output location cannot be used as given; the message says why and what to do instead."""


class TargetBusyError(WriterError):
    """Another live process holds the target's lock (:func:`target_lock`) right now."""


# --------------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------------
MAX_IMGSZ = 8192  # an image (generated, or a network input) larger than this takes GBs and is of no use to a detector


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None where unknown."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def check_memory(imgsz: int, bytes_per_pixel: int) -> None:
    """Refuse an image size whose drawing would not fit in the memory available now."""
    need, have = imgsz * imgsz * bytes_per_pixel, available_memory()
    if have is not None and need > have:
        raise WriterError(
            f"imgsz={imgsz} needs about {need / 2**30:.1f} GiB of memory per image while drawing, but only "
            f"{have / 2**30:.1f} GiB is available; use a smaller imgsz"
        )


PNG_BYTES_PER_PIXEL = 1  # at least: the generated images (noise, gradients) take 2-3 bytes per pixel as PNG


def check_disk(out: PathLike, images: int, imgsz: int, key: str = "out") -> None:
    """Refuse to generate ``images`` square images of ``imgsz`` pixels where the disk cannot hold even a lower
    estimate of them (e.g. ``train=1000000000``), instead of filling it for hours first."""
    need = images * imgsz * imgsz * PNG_BYTES_PER_PIXEL
    folder = resolve_target(out, key)
    while not folder.exists():  # the nearest existing folder holds the new one
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if need > free:
        raise WriterError(
            f"{images} images of {imgsz} px need at least {need / 2**30:.1f} GiB of disk, but {folder} has "
            f"{free / 2**30:.1f} GiB free; generate fewer or smaller images"
        )


# --------------------------------------------------------------------------------------------------
# Checks on the target path
# --------------------------------------------------------------------------------------------------
def resolve_target(out: Optional[PathLike], key: str = "out") -> Path:
    """The absolute, symlink-free path of an output location; an empty one, or one below a file, is an error."""
    if out is None or not str(out).strip():
        raise WriterError(
            f"{key}= is empty; give the folder to write (an empty value would mean the current directory)"
        )
    target = Path(os.path.abspath(Path(str(out)).expanduser())).resolve()
    for parent in target.parents:  # the nearest existing folder above must be one (not e.g. project=FILE)
        if parent.exists():
            if not parent.is_dir():
                raise WriterError(f"{key}={target}: {parent} is a file, not a folder; choose a path inside a folder")
            break
    return target


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_sources(target: Path, sources: Iterable[PathLike], key: str = "out") -> None:
    """Refuse a target that equals, contains or lies inside one of ``sources`` (after resolving links)."""
    for src in sources:
        if src is None or not str(src).strip():
            continue
        resolved = Path(os.path.abspath(Path(str(src)).expanduser())).resolve()
        if _overlaps(target, resolved):
            how = "is" if target == resolved else ("contains" if target in resolved.parents else "lies inside")
            raise WriterError(
                f"{key}={target} {how} the input {resolved}: writing there would overwrite or delete what is "
                f"being read. Give {key}= a folder outside the inputs"
            )


# --------------------------------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------------------------------
def read_manifest(folder: PathLike) -> Optional[dict]:
    """The manifest pst-yolo wrote into ``folder``, or None (no manifest, or not one of ours)."""
    path = Path(folder) / MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or not isinstance(doc.get("files"), dict):
        return None
    return doc


def fingerprint(path: Path) -> str:
    """What a file holds, cheaply: its size and a hash of its first and last 16 KiB (all of a small file), or
    a link's target. The same bytes give the same fingerprint, so a manifest is reproducible, and a file the
    user replaced or edited after we wrote it no longer counts as ours."""
    if path.is_symlink():
        return "link:" + os.readlink(path)
    size = path.stat().st_size
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        digest.update(fh.read(16384))
        if size > 32768:
            fh.seek(size - 16384)
        digest.update(fh.read(16384))
    return f"{size}:{digest.hexdigest()}"


def _write_manifest(folder: Path, kind: str, tool: str, files: Sequence[str], derived: Sequence[str]) -> None:
    listed = {name: fingerprint(folder / name) for name in sorted(files)}
    doc = {"format": MANIFEST_FORMAT, "kind": kind, "tool": tool, "derived": list(derived), "files": listed}
    write_text(folder / MANIFEST, json.dumps(doc, indent=0) + "\n")  # (defined below: one rename)


def _entries(folder: Path) -> list[str]:
    """Relative POSIX paths of every file and symlink under ``folder`` (symlinked folders are not followed)."""
    out = []
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        for d in list(dirs):
            if (base / d).is_symlink():
                dirs.remove(d)
                out.append((base / d).relative_to(folder).as_posix())
        out += [(base / f).relative_to(folder).as_posix() for f in files]
    return sorted(out)


def _examples(names: Sequence[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


# --------------------------------------------------------------------------------------------------
# Lock and Ctrl-C
# --------------------------------------------------------------------------------------------------
def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.pst-yolo-lock"


@contextlib.contextmanager
def target_lock(target: Path, tool: str) -> Iterator[None]:
    """Hold an exclusive lock on ``target`` (a lock file next to it); a second holder is refused at once."""
    path = _lock_path(target)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: an exclusively created file (left behind if killed)
        fcntl = None
    while True:
        if fcntl is None:  # pragma: no cover
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise TargetBusyError(_busy(target, path)) from None
            break
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip()
            os.close(fd)
            raise TargetBusyError(_busy(target, path, holder)) from None
        try:  # the holder before us may have removed the file after we opened it: lock the current one
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} (pst-yolo {tool})\n".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _busy(target: Path, lock: Path, holder: str = "") -> str:
    return (
        f"another process{f' ({holder})' if holder else ''} is writing {target} right now (lock {lock}); "
        "wait for it to finish or choose another output folder"
    )


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C during a few renames would leave a half-swapped folder: hold it until they are done."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


# --------------------------------------------------------------------------------------------------
# Datasets: temporary folder, then rename
# --------------------------------------------------------------------------------------------------
@dataclass
class _Existing:
    """What is at the target before writing: nothing, an empty folder, our dataset, or someone else's files."""

    kind: str  # "absent", "empty", "ours", "foreign"
    ours: set = field(default_factory=set)  # files listed in its manifest (and derived files)
    foreign: list = field(default_factory=list)  # files no manifest lists


def _existing(target: Path, derived: Sequence[str]) -> _Existing:
    if not target.exists():
        return _Existing("absent")
    if not target.is_dir():
        raise WriterError(f"{target} is a file, not a folder; choose a folder for the output")
    names = _entries(target)
    if not names:
        return _Existing("empty")
    manifest = read_manifest(target)
    listed = manifest["files"] if manifest else {}
    patterns = list(derived) + (list(manifest.get("derived", [])) if manifest else [])

    def ours(name: str) -> bool:  # listed and unchanged since we wrote it, or derived from what we wrote
        if not manifest:
            return False
        if name == MANIFEST or any(fnmatch.fnmatch(name, p) for p in patterns):
            return True
        return name in listed and fingerprint(target / name) == listed[name]

    mine = {n for n in names if ours(n)}
    foreign = [n for n in names if n not in mine]
    return _Existing("ours" if manifest else "foreign", mine, foreign)


@dataclass
class DatasetWrite:
    """Handed out by :func:`dataset_writer`: write everything under ``tmp``; ``target`` is where it ends up."""

    target: Path
    tmp: Path


def _clash(new: set, foreign: Sequence[str]) -> list[str]:
    """Foreign files the new output would replace (same path, or a file where the output needs a folder)."""
    new_dirs = {p.as_posix() for n in new for p in Path(n).parents}
    out = [f for f in foreign if f in new or f in new_dirs]
    out += [f for f in foreign if any(p.as_posix() in new for p in Path(f).parents)]
    return sorted(set(out))


def _remove_stale_partials(target: Path) -> None:
    """Temporary folders of an earlier run into this target that was killed (we hold the lock now)."""
    for p in target.parent.glob(f".{target.name}.partial-*"):
        if p.is_dir() and not p.is_symlink() and (p / PARTIAL_MARK).is_file():
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def dataset_writer(
    out: Optional[PathLike],
    tool: str,
    sources: Iterable[PathLike] = (),
    overwrite: bool = False,
    replace_own: bool = True,
    derived: Sequence[str] = (),
    key: str = "out",
) -> Iterator[DatasetWrite]:
    """Write a dataset safely: ``with dataset_writer(out, "synth") as w: ...write under w.tmp...``.

    Args:
        out: the dataset folder.
        tool: what writes it (recorded in the manifest; an earlier dataset of the same tool is "ours").
        sources: inputs the target may not equal, contain or lie inside.
        overwrite: replace a dataset another tool wrote, or write into a folder with other files (those
            files are kept; a new file of the same name is refused).
        replace_own: replace an earlier dataset of the same ``tool`` without ``overwrite``.
        derived: glob patterns (relative paths) of files other programs derive from ours, replaced with it
            (e.g. Ultralytics' ``labels/*.cache``).

    On an exception (Ctrl-C included) the temporary folder is removed and the target is left as it was.
    """
    target = resolve_target(out, key)
    check_sources(target, sources, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target_lock(target, tool):
        _allowed(target, tool, overwrite, replace_own, derived)  # refuse early, before the work
        _remove_stale_partials(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        (tmp / PARTIAL_MARK).write_text(f"pst-yolo {tool} is writing {target}\n")
        try:
            yield DatasetWrite(target=target, tmp=tmp)
            (tmp / PARTIAL_MARK).unlink()
            before = _allowed(target, tool, overwrite, replace_own, derived)  # again: the user may have added files
            new = set(_entries(tmp))
            clashes = _clash(new, before.foreign)
            if clashes:
                raise WriterError(
                    f"{target} holds {len(clashes)} file(s) pst-yolo did not write where the new dataset puts its "
                    f"own, e.g. {_examples([str(target / c) for c in clashes])}; move them away or choose another "
                    "output folder (nothing was changed)"
                )
            _write_manifest(tmp, "dataset", tool, sorted(new), derived)
            _commit(tmp, target, before)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _allowed(target: Path, tool: str, overwrite: bool, replace_own: bool, derived: Sequence[str]) -> _Existing:
    """What is at the target, if this write may go ahead; else the error that says why not."""
    before = _existing(target, derived)
    manifest = read_manifest(target) if before.kind == "ours" else None
    if manifest is not None and not overwrite and not (replace_own and manifest.get("tool") == tool):
        raise WriterError(
            f"{target} already holds a dataset (written by pst-yolo {manifest.get('tool')}); pass overwrite=true "
            "to replace it (only the files that run wrote are removed), or choose another output folder"
        )
    if before.kind == "foreign" and not overwrite:
        raise WriterError(
            f"{target} is not empty and pst-yolo did not write it (no {MANIFEST}): {len(before.foreign)} "
            f"file(s), e.g. {_examples(before.foreign)}. Choose a new or empty folder, or pass overwrite=true "
            "to write into it (your files are kept; pst-yolo never replaces a file it did not write)"
        )
    return before


def _commit(tmp: Path, target: Path, before: _Existing) -> None:
    """Put the finished ``tmp`` in place of ``target``: keep foreign files, drop only our old ones."""
    if before.kind in ("absent", "empty"):
        with _interrupts_deferred():
            if before.kind == "empty":
                target.rmdir()
            os.rename(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent))
    old.rmdir()  # (a free name next to the target)
    with _interrupts_deferred():
        os.rename(target, old)
        os.rename(tmp, target)
        for name in before.foreign:  # the user's files go back where they were
            dst = target / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.rename(old / name, dst)
    for name in before.ours:  # then our old files go
        with contextlib.suppress(FileNotFoundError):
            os.unlink(old / name)
    for root, _dirs, _files in os.walk(old, topdown=False):  # empty folders last (a non-empty one stays)
        with contextlib.suppress(OSError):
            os.rmdir(root)
    if old.exists():  # (only if files appeared in the moment between the last check and the swap)
        warnings.warn(
            f"pst-yolo kept {old}: it holds files that were not there when {target} was checked", stacklevel=3
        )


# --------------------------------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------------------------------
def _claim(folder: Path, tool: str) -> Path:
    if read_manifest(folder) is None:
        _write_manifest(folder, "run", tool, [], [])
    return folder


def run_folder(
    path: Optional[PathLike],
    tool: str,
    numbered: bool = True,
    sources: Iterable[PathLike] = (),
    key: str = "save_dir",
) -> Path:
    """Create (or re-use) a run folder and return it.

    ``numbered=True``: ``path`` if it does not exist, else the first free ``path2``, ``path3``, ... (created
    atomically, so two runs never share one). ``numbered=False`` (``save_dir=``, ``exist_ok=True``): ``path``
    itself, which must be new, empty, or an earlier pst-yolo run folder.
    """
    target = resolve_target(path, key)
    check_sources(target, sources, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    if numbered:
        for n in range(1, 10000):
            candidate = target if n == 1 else target.with_name(f"{target.name}{n}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return _claim(candidate, tool)
        raise WriterError(f"no free run folder name next to {target} (tried {target.name} .. {target.name}9999)")
    check_run_folder(target, key=key)
    target.mkdir(parents=True, exist_ok=True)
    return _claim(target, tool)


def check_run_folder(path: Optional[PathLike], sources: Iterable[PathLike] = (), key: str = "save_dir") -> Path:
    """What :func:`run_folder` checks for a named folder (``numbered=False``), without creating anything."""
    target = resolve_target(path, key)
    check_sources(target, sources, key)
    if target.exists() and not target.is_dir():
        raise WriterError(f"{key}={target} is a file, not a folder")
    if target.is_dir() and read_manifest(target) is None:
        names = _entries(target)
        if names:
            raise WriterError(
                f"{key}={target} is not empty and pst-yolo did not write it (no {MANIFEST}): {len(names)} file(s), "
                f"e.g. {_examples(names)}. Choose a new or empty folder, so none of those files is replaced"
            )
    return target


def check_output_file(path: PathLike, sources: Iterable[PathLike] = (), overwrite: bool = False, key: str = "out"):
    """A single output file: not one of the inputs, and an existing file is replaced only with ``overwrite``."""
    target = resolve_target(path, key)
    check_sources(target, sources, key)
    if target.is_dir():
        raise WriterError(f"{key}={target} is a folder; give a file name")
    if target.exists() and not overwrite:
        raise WriterError(f"{key}={target} exists; pass overwrite=true to replace it, or choose another file name")
    return target


# --------------------------------------------------------------------------------------------------
# Single files: a unique temporary name beside the target, then one rename
# --------------------------------------------------------------------------------------------------
# Every file pst-yolo writes goes through the functions below (tests/data/test_writer_contract.py scans the
# package for direct writes elsewhere). Each writes a temporary file with a unique name next to the target
# (``.NAME.XXXXXXXX.partial``: never a fixed name a user's file could have) and renames it over the target
# in one step, so a reader sees the old file or the new one, and an interrupted write leaves nothing behind.
# They do not decide whether the target may be replaced: the caller has checked that (a new run folder, a
# dataset's temporary folder, :func:`check_output_file`, :func:`check_owned_file`).


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_file(path: PathLike, fill) -> Path:
    """Write ``path`` through ``fill(tmp)``, which writes the temporary file it is given; then rename it into
    place. On any error (Ctrl-C included) the temporary file is removed and ``path`` is left as it was."""
    target = Path(path)
    if target.is_dir():
        raise WriterError(f"{target} is a folder; give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        fill(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # (mkstemp creates 0600; a written file gets the usual mode)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target


def write_bytes(path: PathLike, data: bytes) -> Path:
    """``path`` holds ``data`` (written whole or not at all)."""

    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return replace_file(path, fill)


def write_text(path: PathLike, text: str) -> Path:
    """``path`` holds ``text`` (UTF-8; written whole or not at all)."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: PathLike, doc: Any, indent: Optional[int] = None) -> Path:
    """``path`` holds ``doc`` as JSON (a final newline when indented)."""
    return write_text(path, json.dumps(doc, indent=indent) + ("\n" if indent is not None else ""))


def write_csv(path: PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """``path`` holds a CSV table: ``header``, then ``rows``."""
    import csv
    import io

    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buf.getvalue())


def write_image(path: PathLike, image: Any, params: Sequence[int] = ()) -> Path:
    """``path`` holds ``image`` (a BGR array), encoded by OpenCV in the format its suffix names."""
    import cv2

    target = Path(path)
    ok, encoded = cv2.imencode(target.suffix or ".png", image, list(params))
    if not ok:
        raise WriterError(f"OpenCV cannot encode an image as {target.suffix or '(no suffix)'} for {target}")
    return write_bytes(target, encoded.tobytes())


def save_figure(path: PathLike, figure: Any, **kwargs: Any) -> Path:
    """``path`` holds a Matplotlib ``figure`` (format from the suffix; ``kwargs`` go to ``savefig``)."""
    target = Path(path)
    fmt = target.suffix.lstrip(".") or "png"
    return replace_file(target, lambda tmp: figure.savefig(tmp, format=fmt, **kwargs))


def save_torch(path: PathLike, obj: Any) -> Path:
    """``path`` holds ``obj`` written by ``torch.save`` (a checkpoint)."""
    import torch

    return replace_file(path, lambda tmp: torch.save(obj, tmp))


def save_array(path: PathLike, array: Any) -> Path:
    """``path`` holds a NumPy array in ``.npy`` format (``np.save`` would append ``.npy`` to a temporary name)."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array)
    return write_bytes(path, buf.getvalue())


def place_file(src: PathLike, dst: PathLike, mode: str) -> bool:
    """``dst`` (in a dataset's temporary folder) becomes a symlink to, a hard link of, or a copy of ``src``
    (``mode``: symlink, hardlink, copy); a link the file system refuses becomes a copy. Returns False when a
    link was asked for but a copy was made."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if mode == "copy":
        replace_file(dst, lambda tmp: shutil.copy2(src, tmp))
        return True
    try:
        if mode == "symlink":
            os.symlink(src.resolve(), dst)
        else:
            os.link(src, dst)
        return True
    except OSError:
        replace_file(dst, lambda tmp: shutil.copy2(src, tmp))
        return False


def open_video(path: PathLike, fourcc: str, fps: float, size: tuple[int, int]) -> Any:
    """A ``cv2.VideoWriter`` on ``path``, a new file in a run folder (a video is written frame by frame, so it
    cannot go through a temporary file of its own; the run folder is new or pst-yolo's)."""
    import cv2

    target = Path(path)
    if target.exists():
        raise WriterError(f"{target} exists; pst-yolo writes videos only to new files")
    return cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*fourcc), float(fps), size)


# --------------------------------------------------------------------------------------------------
# Files pst-yolo writes into a folder it does not own (a report folder): ownership by manifest
# --------------------------------------------------------------------------------------------------
def owns_file(path: PathLike) -> bool:
    """Whether pst-yolo wrote ``path`` and nobody changed it since: its folder's manifest lists it with this
    very content."""
    target = Path(path)
    manifest = read_manifest(target.parent)
    listed = (manifest or {}).get("files", {})
    return target.is_file() and not target.is_symlink() and listed.get(target.name) == fingerprint(target)


def check_owned_file(path: PathLike, overwrite: bool = False, key: str = "out") -> Path:
    """A file pst-yolo is about to (re)write into a folder the user chose: an existing file is replaced only if
    pst-yolo wrote it (:func:`owns_file`) or ``overwrite``; a folder in its place is refused."""
    target = Path(path)
    if target.is_dir():
        raise WriterError(f"{target} is a folder where pst-yolo writes a file; move it away or choose another {key}=")
    if (target.exists() or target.is_symlink()) and not overwrite and not owns_file(target):
        raise WriterError(
            f"{target} exists and pst-yolo did not write it (or it was changed since); pass overwrite=true to "
            f"replace it, or choose another {key}= (nothing was changed)"
        )
    return target


def record_files(folder: PathLike, tool: str, names: Iterable[str]) -> None:
    """List ``names`` (files in ``folder``, as they are now) in the folder's manifest, so a later run may
    replace them (:func:`owns_file`); other entries are kept, a manifest is created if there is none."""
    folder = Path(folder)
    doc = read_manifest(folder) or {"format": MANIFEST_FORMAT, "kind": "files", "tool": tool, "derived": []}
    files = dict(doc.get("files", {}))
    for name in names:
        files[name] = fingerprint(folder / name)
    doc["files"] = dict(sorted(files.items()))
    write_text(folder / MANIFEST, json.dumps(doc, indent=0) + "\n")
