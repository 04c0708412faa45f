"""Images that are the same picture: identical bytes, or the same photo at another size.

A split made here must keep such images together, or the test set holds copies of training
images. Two images are the same picture when their bytes are identical (SHA-1), or when their
difference hashes differ in at most :data:`HASH_DISTANCE` of 128 bits. The hash (dHash, both
directions) is one bit per neighbour pair of a 9x8 and an 8x9 grayscale thumbnail: it survives
resizing and re-encoding, not a different photo. Only OpenCV and numpy are used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

# Bits of 128. Measured on the paddy and BCCD photos: copies resized to 0.27-1.7x (aspect changed
# by 10%, JPEG re-encoded) differ by 0-4 bits in 93% of cases and by 8 or less in 98%; the
# nearest different photo is 12 or more bits away, apart from burst shots of one scene (5-6).
HASH_DISTANCE = 8
_POPCOUNT = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)


def difference_hash(path: str | Path) -> bytes | None:
    """The 128-bit dHash (16 bytes) of an image file, or None when it cannot be decoded.

    Decoded as grayscale (EXIF orientation applied, 16-bit scaled to 8), shrunk with area
    averaging to 9x8 (one bit per pixel brighter than its right neighbour) and to 8x9 (than the
    one below).
    """
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        return None
    wide = cv2.resize(image, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    tall = cv2.resize(image, (8, 9), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = np.concatenate([(wide[:, :-1] > wide[:, 1:]).ravel(), (tall[:-1] > tall[1:]).ravel()])
    return np.packbits(bits).tobytes()


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
        values = np.frombuffer(b"".join(hashes[i] for i in known), np.uint8).reshape(-1, 16)
        for row, i in enumerate(known[:-1]):
            # Hamming distance to every later image at once (popcount of the XOR, byte-wise).
            distance = _POPCOUNT[values[row + 1 :] ^ values[row]].sum(axis=1, dtype=np.int32)
            for k in np.flatnonzero(distance <= HASH_DISTANCE):
                union(i, known[row + 1 + int(k)])
    return [find(i) for i in range(len(paths))]
