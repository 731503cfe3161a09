"""Reading COCO instances JSON files and image files strictly: what ``coco2yolo`` and evaluation both rely on.

A file that would convert or score silently wrong is refused here, with the file, the entries and the fix
in the message (and counts when there are many): non-finite numbers (``NaN``, ``Infinity``) anywhere,
numbers written as text, objects where lists belong, ``null`` entries, an empty image list; and image files
that are empty, truncated or corrupt (decoded with OpenCV).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Union

import numpy as np

PathLike = Union[str, Path]
SECTIONS = ("images", "annotations", "categories")
NUMERIC_FIELDS = {"images": ("width", "height"), "annotations": ("area", "iscrowd")}


class CocoJsonError(ValueError):
    """A COCO JSON that cannot be used as it is; the message names the file, the entries and the fix."""


class ImageFileError(ValueError):
    """An image file that cannot be decoded; the message names the file and says why."""


# --------------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------------
def load_coco_json(
    source: PathLike | Mapping, error: type[ValueError] = CocoJsonError, need_images: bool = True
) -> tuple[dict, str]:
    """Read and check the structure of a COCO instances JSON (a path or the loaded dict).

    Returns ``(data, where)``: a copy of the document with ``annotations`` present (``[]`` if it was
    missing), and how to name it in messages. Raises ``error`` for a file that is missing or not JSON, or
    whose structure is wrong (see the module doc).
    """
    if isinstance(source, Mapping):
        where = "the annotations dict"
        data = json.loads(json.dumps(source))  # a copy; NaN survives the round trip and is found below
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise error(f"annotations file not found: {path} (give a COCO instances JSON)")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise error(f"{path} is not valid JSON: {e}") from e
    problems = structure_problems(data, need_images)
    if problems:
        raise error(f"{where}: " + "; ".join(problems))
    data.setdefault("annotations", [])
    return data, where


def structure_problems(data: Any, need_images: bool = True) -> list[str]:
    """Every structural problem of a loaded COCO document, each with counts, an example and the fix."""
    if not isinstance(data, dict):
        return [f"the top level is {_kind(data)}, not an object with 'images', 'annotations' and 'categories' lists"]
    problems = []
    for key in SECTIONS:
        value = data.get(key)
        if key == "annotations" and key not in data:
            continue
        if not isinstance(value, list):
            got = "missing" if key not in data else f"{_kind(value)}, not a list"
            fix = "wrap its entries in [...]" if isinstance(value, dict) else f"give a list of {key} (may be [])"
            problems.append(f"'{key}' is {got}; {fix}")
            continue
        bad = [(i, e) for i, e in enumerate(value) if not isinstance(e, dict)]
        if bad:
            i, e = bad[0]
            problems.append(
                f"{len(bad)} of {len(value)} '{key}' entries are not objects (e.g. {key}[{i}] is {_kind(e)}); "
                "remove them or give each as an object {...}"
            )
    if problems:
        return problems
    if need_images and not data["images"]:
        problems.append("'images' is empty: there is nothing to convert or evaluate; check that this is the right file")
    nonfinite = list(_nonfinite(data))
    if nonfinite:
        problems.append(
            f"{len(nonfinite)} number(s) are not finite (NaN or Infinity), e.g. {_examples(data, nonfinite)}; "
            "replace them with real numbers or remove those entries"
        )
    text = list(_non_numeric(data))
    if text:
        problems.append(
            f"{len(text)} value(s) that must be numbers are not, e.g. {_examples(data, text)}; write them as "
            "numbers (not text, true/false or null)"
        )
    return problems


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(type(value), "a number")


def _nonfinite(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Paths (tuples of keys and indices) of every non-finite float in a loaded JSON document."""
    if isinstance(value, float):
        if not math.isfinite(value):
            yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _nonfinite(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nonfinite(v, (*path, i))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _non_numeric(data: dict) -> Iterator[tuple]:
    """Paths of values that COCO defines as numbers but are text, true/false or null (boxes, sizes, areas)."""
    for key, names in NUMERIC_FIELDS.items():
        for i, entry in enumerate(data.get(key, [])):
            for name in names:
                if name in entry and not _is_number(entry[name]) and not (name == "iscrowd" and entry[name] in (0, 1)):
                    yield (key, i, name)
    for i, a in enumerate(data.get("annotations", [])):
        box = a.get("bbox")
        if isinstance(box, list):
            yield from (("annotations", i, "bbox", j) for j, v in enumerate(box) if not _is_number(v))


def _examples(data: dict, paths: list, n: int = 3) -> str:
    """``annotations[4] (id 17) bbox[1] = NaN`` for the first few paths."""
    out = []
    for path in paths[:n]:
        parts: list[str] = []
        value: Any = data
        for depth, part in enumerate(path):
            value = value[part]
            if isinstance(part, int) and parts:
                parts[-1] += f"[{part}]"
                if depth == 1 and isinstance(value, dict) and "id" in value:
                    parts[-1] += f" (id {value['id']!r})"
            else:
                parts.append(str(part))
        out.append(f"{' '.join(parts)} = {json.dumps(value)}")
    return "; ".join(out) + ("; ..." if len(paths) > n else "")


# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------
MAX_IMAGE_PIXELS = 8192 * 8192  # 200 MB decoded (BGR): larger images are refused before decoding


def _png_size(head: bytes) -> Optional[tuple[int, int]]:
    """Width and height from a PNG's IHDR chunk (the first chunk, right after the signature)."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return None


def _jpeg_size(buf: bytes) -> Optional[tuple[int, int]]:
    """Width and height from a JPEG's first start-of-frame marker (SOF0..SOF15, not DHT/JPG/DAC)."""
    if buf[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(buf):
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = int.from_bytes(buf[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(buf[i + 7 : i + 9], "big"), int.from_bytes(buf[i + 5 : i + 7], "big")
        i += 2 + length
    return None


def _head(path: PathLike, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def header_size(path: PathLike, buf: Optional[np.ndarray] = None) -> Optional[tuple[int, int]]:
    """``(width, height)`` an image file's header claims, read without decoding the pixels: PNG and JPEG
    here, other formats through Pillow's lazy open; None where no header could be read (OpenCV decides)."""
    data = bytes(buf[: 1 << 20]) if buf is not None else _head(path, 1 << 18)
    found = _png_size(data) or _jpeg_size(data)
    if found is not None:
        return found
    try:
        import warnings

        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return tuple(im.size)
    except Exception as e:  # a decompression bomb by Pillow's own limit, or a format it does not read
        if type(e).__name__ == "DecompressionBombError":
            return (MAX_IMAGE_PIXELS + 1, 1)
        return None


def check_pixels(path: PathLike, size: Optional[tuple[int, int]], max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Refuse an image whose header claims more than ``max_pixels`` pixels, before anything decodes it."""
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageFileError(
            f"{path}: the header says {size[0]}x{size[1]} pixels, more than the {max_pixels} pixels pst-yolo "
            "decodes (it would take GBs of memory); resize the image or split it into tiles"
        )


def decode_image(path: PathLike, flags: Optional[int] = None, expect: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Decode an image file with OpenCV (BGR, or as ``flags`` ask); an empty, truncated or corrupt file is an
    :class:`ImageFileError` that says so (OpenCV's own decoders report truncation by failing). The header is
    read first: more than :data:`MAX_IMAGE_PIXELS` pixels, or (``expect``: the ``(width, height)`` the
    annotations give) a size that is neither that nor its transpose (EXIF rotation), is refused before
    decoding."""
    import cv2

    try:
        buf = np.fromfile(str(path), np.uint8)
    except OSError as e:
        raise ImageFileError(f"{path}: cannot be read ({e.strerror or e})") from e
    if buf.size == 0:
        raise ImageFileError(f"{path}: corrupt or truncated image (the file is empty, 0 bytes)")
    size = header_size(path, buf)
    check_pixels(path, size)
    if expect is not None and size is not None and size not in (tuple(expect), tuple(expect)[::-1]):
        raise ImageFileError(
            f"image {path} is {size[0]}x{size[1]} pixels but the annotations say {expect[0]}x{expect[1]}; fix the "
            "width/height in the JSON (boxes are in those pixels)"
        )
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR if flags is None else flags)
    if img is None:
        raise ImageFileError(
            f"{path}: corrupt or truncated image ({buf.size} bytes that OpenCV cannot decode); replace the file"
        )
    return img
