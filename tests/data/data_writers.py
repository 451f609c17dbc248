"""Writers of small files in the official layouts, for the reader tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file holding ``array``."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_split(
    folder: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool = True
) -> tuple[Path, Path]:
    stem = "train" if split == "train" else "t10k"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        path = folder / f"{stem}-{kind}{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(data) if gz else data)
        paths.append(path)
    return paths[0], paths[1]


def small_digits(n: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_cifar_batch(path: Path, images: np.ndarray, labels: list[int], protocol: int = 2) -> None:
    """A batch in the official dict layout; ``images`` is (N, 3, 32, 32) uint8."""
    batch = {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": list(labels),
        b"data": images.reshape(len(images), 3072),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def py2_batch_bytes(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as Python 2's cPickle wrote the official files (protocol 2, str keys).

    Written opcode by opcode: Python 3 cannot produce Python 2 ``str`` objects.
    """
    assert data.dtype == np.uint8 and data.ndim == 2 and all(0 <= v < 256 for v in labels)

    def string(s: bytes) -> bytes:  # SHORT_BINSTRING
        return b"U" + bytes([len(s)]) + s

    def int_(v: int) -> bytes:  # BININT2
        return b"M" + struct.pack("<H", v)

    raw = data.tobytes()
    return (
        b"\x80\x02}("
        + string(b"data")
        + b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n"
        + b"K\x00\x85"
        + string(b"b")
        + b"\x87R"
        + b"(K\x01"
        + int_(data.shape[0])
        + int_(data.shape[1])
        + b"\x86"
        + b"cnumpy\ndtype\n"
        + string(b"u1")
        + b"K\x00K\x01\x87R"
        + b"(K\x03"
        + string(b"|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        + b"\x89T"
        + struct.pack("<I", len(raw))
        + raw
        + b"tb"
        + string(b"labels")
        + b"]("
        + b"".join(b"K" + bytes([v]) for v in labels)
        + b"eu."
    )


#: The WAE crop of a 178x218 CelebA image: columns 19..158, rows 39..178.
CELEBA_BOX = (19, 39, 159, 179)


def celeba_face(colour: tuple[int, int, int]) -> np.ndarray:
    """A 218x178 RGB image: ``colour`` exactly on the 140x140 centre crop, blue around it."""
    pixels = np.zeros((218, 178, 3), np.uint8)
    pixels[...] = (0, 0, 255)
    left, top, right, bottom = CELEBA_BOX
    pixels[top:bottom, left:right] = colour
    return pixels


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=100, subsampling=0)
    return out.getvalue()


def write_celeba(
    folder: Path, colours: list[tuple[int, int, int]], parts: list[int], as_zip: bool = False
) -> list[str]:
    """The official layout: images (folder or zip) and list_eval_partition.txt."""
    names = [f"{i:06d}.jpg" for i in range(1, len(colours) + 1)]
    folder.mkdir(parents=True, exist_ok=True)
    if as_zip:
        with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as zf:
            for name, colour in zip(names, colours, strict=True):
                zf.writestr(f"img_align_celeba/{name}", jpeg_bytes(celeba_face(colour)))
    else:
        (folder / "img_align_celeba").mkdir()
        for name, colour in zip(names, colours, strict=True):
            (folder / "img_align_celeba" / name).write_bytes(jpeg_bytes(celeba_face(colour)))
    lines = "".join(f"{n} {p}\n" for n, p in zip(names, parts, strict=True))
    (folder / "list_eval_partition.txt").write_text(lines)
    return names
