"""The video bytes at ``/videos/{id}.mp4``: the fixture MP4, or that MP4 padded to any size, streamed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from .replies import CHUNK_SIZE

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VIDEO_PATH = REPO_ROOT / "tests" / "fixtures" / "sample-1s-480p.mp4"


class VideoSource:
    """Bytes of the video at ``/videos/{id}.mp4``: the fixture MP4, or exactly ``size`` bytes that begin
    with the fixture (so with its ``ftyp`` box) followed by a precomputed 1 MiB filler chunk, repeated.

    >>> src = VideoSource(DEFAULT_VIDEO_PATH); sum(len(c) for c in src.chunks(3_000_000)) == 3_000_000
    True
    """

    def __init__(self, path: Path) -> None:
        self.fixture = Path(path).read_bytes()
        if self.fixture[4:8] != b"ftyp":
            raise ValueError(f"{path} does not start with an MP4 ftyp box")
        self.filler = hashlib.shake_256(b"fake-cometapi filler").digest(CHUNK_SIZE)

    def length(self, size: int | None) -> int:
        """Body length for a job's ``video_size``."""
        return len(self.fixture) if size is None else size

    def chunks(self, size: int | None) -> Iterator[bytes | memoryview]:
        """The body in chunks of at most 1 MiB; deterministic for a given ``size``."""
        if size is None:
            yield self.fixture
            return
        head = self.fixture[:size]
        if head:
            yield head
        remaining = size - len(head)
        filler = memoryview(self.filler)
        while remaining > 0:
            step = min(remaining, len(filler))
            yield filler[:step]
            remaining -= step
