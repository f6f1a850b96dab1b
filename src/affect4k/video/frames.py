"""Optionally unpack a clip into one JPEG per frame, for tools that want an image folder.

Files are named by clip frame index (``000000.jpg`` is frame 0, time 0 s of the clip), so a file
name agrees with the frame-index contract in docs/design.md; nothing downstream needs this
folder, which is why the workflow only builds it when asked.
"""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from affect4k.config.schema import schema_range
from affect4k.core.errors import Affect4kError
from affect4k.core.files import atomic_dir
from affect4k.core.media import count_frames, run_ffmpeg

#: ffmpeg's JPEG quality scale: 1 is best, 31 worst.
JPEG_QUALITY_RANGE = schema_range("frames.jpeg_quality")


def export_frames(clip: Path, out_dir: Path, *, quality: int) -> int:
    """Write every frame of ``clip`` as ``out_dir/{frame:06d}.jpg`` and return how many.

    The folder is filled under a temporary name and then renamed, so ``out_dir`` either holds
    all frames or does not exist; an older ``out_dir`` is replaced.
    """
    if quality not in JPEG_QUALITY_RANGE:
        raise Affect4kError(f"JPEG quality must be between 1 and 31, got {quality}")
    clip, out_dir = Path(clip), Path(out_dir)
    expected = count_frames(clip)
    with atomic_dir(out_dir) as frames:
        export = (
            ffmpeg.input(str(clip))
            .video.output(
                str(frames / "%06d.jpg"),
                format="image2",
                start_number=0,
                fps_mode="passthrough",
                **{"q:v": quality},
            )
            .global_args("-hide_banner", "-nostdin", "-xerror")
        )
        run_ffmpeg(export, f"frames of {clip}")
        written = sum(1 for _ in frames.iterdir())
        if written != expected:
            raise Affect4kError(f"{clip}: exported {written} frames but the clip has {expected}")
    return written
