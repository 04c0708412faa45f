"""Images that are the same picture: identical bytes, or the same photo at another size.

A split made here must keep such images together, or the test set holds copies of training
images. Two images are the same picture when their bytes are identical (SHA-1), or when their
difference hashes (dHash: a 9x8 grayscale thumbnail, one bit per horizontal neighbour pair) differ
in at most :data:`HASH_DISTANCE` of 64 bits, which survives resizing and re-encoding but not a
different photo. Only OpenCV and numpy are used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

HASH_DISTANCE = 4  # bits of 64; resized copies differ by 0-2, different photos by ~20-40
_POPCOUNT = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)


def difference_hash(path: str | Path) -> int | None:
    """The 64-bit dHash of an image file, or None when it cannot be decoded.

    Decoded as grayscale (EXIF orientation applied, 16-bit scaled to 8), shrunk to 9x8 with
    area averaging, one bit per pixel brighter than its right neighbour.
    """
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None
    small = cv2.resize(image, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, :-1] > small[:, 1:]).reshape(-1)
    return int(np.packbits(bits).view(">u8")[0])


def file_digest(path: str | Path) -> str:
    """SHA-1 of the file's bytes ("" when it cannot be read)."""
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def duplicate_groups(paths: Sequence[str | Path]) -> list[int]:
    """A group number per image: images that are the same picture share one.

    Groups are numbered by their first image, so the result depends only on ``paths``.
    """
    parent = list(range(len(paths)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    by_digest: dict[str, int] = {}
    for i, path in enumerate(paths):
        digest = file_digest(path)
        if digest:
            union(i, by_digest.setdefault(digest, i))
    hashes = [difference_hash(path) for path in paths]
    known = [i for i, h in enumerate(hashes) if h is not None]
    if known:
        values = np.array([hashes[i] for i in known], dtype=np.uint64)
        for row, i in enumerate(known[:-1]):
            # Hamming distance to every later image at once (popcount of the XOR, byte-wise).
            xor = (values[row + 1 :] ^ values[row]).view(np.uint8).reshape(-1, 8)
            distance = _POPCOUNT[xor].sum(axis=1, dtype=np.int32)
            for k in np.flatnonzero(distance <= HASH_DISTANCE):
                union(i, known[row + 1 + int(k)])
    return [find(i) for i in range(len(paths))]
