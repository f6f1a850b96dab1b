"""Inputs built to hurt: an image that claims billions of pixels, a config that expands to
billions of values. Each is refused before it is expanded, wherever it is read."""

from __future__ import annotations

import zlib
from pathlib import Path

BILLION_LAUGHS = "\n".join(
    [
        "videos: videos.tsv",
        "annotations: annotations",
        'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)),
        "bogus: *l8",
    ]
)


def pixel_bomb(path: Path, side: int = 30000) -> Path:
    """A PNG of a few bytes whose header declares ``side`` x ``side`` pixels (decoded, 2.7 GB
    for 30000, and several copies on the way)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path
