"""What ``affect4k predict`` reads and what it may overwrite.

Its inputs come from a user's command line, so each is checked before the model loads: a local
file or folder of photos, or a URL fetched once; images sized from their header and videos from
their container; nothing but regular files. Its outputs never replace an input or a file it did
not write (:func:`written_by_predict` recognises its own CSVs, figures and overlays by
:data:`MARK`), so a rerun replaces its own outputs and nothing else.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from affect4k.config.schema import schema_default
from affect4k.core.errors import Affect4kError
from affect4k.core.images import check_image_size
from affect4k.core.media import probe_video, read_container

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


VIDEO_COLUMNS = ("frame", "time_s", "face", "valence", "arousal")


IMAGE_COLUMNS = ("file", "faces", "face", "x1", "y1", "x2", "y2", "valence", "arousal")


#: The photo CSV's header before it named the scored face (an output a rerun may replace).
OLD_IMAGE_COLUMNS = ("file", "face", "valence", "arousal")


#: Written into the figure (a PNG text chunk) and the overlay (its ``comment`` tag): an existing
#: output is replaced only if it carries this (a CSV: if its header is one of the two above).
MARK = "affect4k predict"


#: The largest video frame taken, either orientation: 8K (DCI 8192x4320 covers UHD 7680x4320).
MAX_VIDEO_SIDES = (8192, 4320)


def local_input(text: str) -> Path | None:
    """The local file or folder ``text`` names (None for a URL).

    Only a regular file or a folder is taken: reading a FIFO or a device would wait for a
    writer or never end.
    """
    from affect4k.video.download import local_source

    local = local_source(text)
    if local is None:
        return None
    if not local.exists():
        raise Affect4kError(f"{text}: no such file or folder")
    _check_readable(local)
    return local


def fetch_input(url: str, work: Path) -> Path:
    """The video at ``url``, fetched by yt-dlp into ``work`` (at most 2160p, as downloads are)."""
    from affect4k.video.download import download_video

    return download_video(
        "input", url, work / "download.mkv", max_height=schema_default("download.max_height")
    )


def _check_readable(path: Path) -> None:
    mode = path.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise Affect4kError(
            f"{path}: not a regular file or folder (a FIFO, device or socket is not read)"
        )


def is_photos(source: Path) -> bool:
    """Whether ``source`` is a photo or a folder of photos (else it is read as a video)."""
    return source.is_dir() or source.suffix.lower() in IMAGE_SUFFIXES


def check_input_size(source: Path, max_pixels: int) -> None:
    """Refuse images above ``max_pixels`` and videos above 8K, from their headers alone."""
    if is_photos(source):
        for path in image_files(source):
            check_image_size(path, max_pixels)
    else:
        check_video_size(source)


def image_files(source: Path) -> list[Path]:
    """``source`` itself, or the images directly inside the folder ``source``, by name."""
    if not source.is_dir():
        return [source]
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise Affect4kError(f"{source}: folder holds no image ({', '.join(IMAGE_SUFFIXES)})")
    for path in files:
        _check_readable(path)
    return files


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same resolved path, or hard links."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _input_files(text: str) -> list[Path]:
    """The local files and folders ``text`` makes the command read (none for a URL)."""
    from affect4k.video.download import local_source

    local = local_source(text)
    if local is None or not local.exists():
        return []
    if local.is_dir():
        return [local, *(p for p in local.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)]
    return [local]


def written_by_predict(path: Path) -> bool:
    """Whether the existing ``path`` is an output of this command (see :data:`MARK`)."""
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as file:
        start = file.read(64 * 1024)
    if path.suffix.lower() == ".csv":
        header = start.split(b"\n", 1)[0].strip().decode("utf-8", "replace")
        return header in (",".join(c) for c in (VIDEO_COLUMNS, IMAGE_COLUMNS, OLD_IMAGE_COLUMNS))
    if start.startswith(b"\x89PNG"):
        from PIL import Image, UnidentifiedImageError

        try:
            # Pillow decodes the whole image to find text chunks after the pixels: sized first.
            check_image_size(path)
            with Image.open(path) as image:
                return image.text.get("Software") == MARK
        except (Affect4kError, OSError, UnidentifiedImageError, ValueError):
            return False
    try:
        return read_container(path).tags.get("comment") == MARK
    except Affect4kError:
        return False


def check_outputs(inputs: list[str], outputs: dict[str, Path]) -> None:
    """Refuse an output that is an input (or an image of an input folder), an image written
    into an input folder (the next run would score the figure as a photo), another output, or
    an existing file this command did not write, naming both paths; before any work.

    ``inputs`` as the user gave them (paths or URLs); ``outputs`` by how the user named them.
    """
    sources = [source for text in inputs for source in _input_files(text)]
    folders = [source for source in sources if source.is_dir()]
    named = list(outputs.items())
    for index, (name, path) in enumerate(named):
        for source in sources:
            if _same_file(path, source):
                raise Affect4kError(f"{name} would overwrite the input {source}")
        for folder in folders:
            if path.suffix.lower() in IMAGE_SUFFIXES and _same_file(path.parent, folder):
                raise Affect4kError(
                    f"{name} would land in the input folder {folder}, where the next run "
                    "would read it as a photo; write -o elsewhere"
                )
        for other_name, other in named[index + 1 :]:
            if _same_file(path, other):
                raise Affect4kError(f"{name} and {other_name} are the same file")
        if (path.exists() or path.is_symlink()) and not written_by_predict(path):
            raise Affect4kError(
                f"{name}: {path} exists and was not written by affect4k predict; "
                "move it away or choose another output"
            )


def mark_png(drawn: Path, out: Path) -> None:
    """Copy the PNG ``drawn`` to ``out`` with :data:`MARK` as its Software text chunk."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", MARK)
    with Image.open(drawn) as image:
        image.save(out, format="png", pnginfo=info)


def check_video_size(path: Path) -> None:
    """Refuse a video whose frames are above 8K (:data:`MAX_VIDEO_SIDES`), from its header."""
    info = probe_video(path)
    long_side, short_side = max(MAX_VIDEO_SIDES), min(MAX_VIDEO_SIDES)
    if max(info.width, info.height) > long_side or min(info.width, info.height) > short_side:
        raise Affect4kError(
            f"{path}: {info.width}x{info.height} frames are above 8K "
            f"({long_side}x{short_side}); scale the video down first"
        )
