"""Every image file the package decodes goes through :func:`read_image`, which sizes it first.

An image is decoded whole (about 3 bytes a pixel, and several copies on the way), so a PNG of a
few hundred kilobytes that declares 30000x30000 pixels took 10 GB before failing. Its header
says so without decoding anything: Pillow reads it, and anything above the pixel limit is
refused naming the file. Only regular files are opened, since a FIFO would block the reader.
Subject photos (``videos.tsv``'s ``subject`` column, ``affect4k predict --subject``), the photos
``affect4k predict`` scores and the crops of external corpora are all read here.
"""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import cv2
import numpy as np

from affect4k.core.errors import Affect4kError

#: Largest image decoded unless told otherwise (``affect4k predict --max-pixels``): 100
#: megapixels, above the photos of most cameras.
MAX_PIXELS = 100_000_000
#: Held while Pillow's own pixel limit is switched off.
_PILLOW_LIMIT = threading.Lock()


def check_image_size(path: Path, max_pixels: int = MAX_PIXELS, *, what: str = "image") -> None:
    """Refuse ``path`` unless it is a regular file holding an image of at most ``max_pixels``,
    from its header alone (``what`` says in the message which image it is)."""
    from PIL import Image, UnidentifiedImageError

    try:
        mode = Path(path).stat().st_mode
    except OSError:
        raise Affect4kError(f"{what} {path} does not exist") from None
    if not stat.S_ISREG(mode):
        raise Affect4kError(
            f"{what} {path}: not a regular file (a FIFO, device or socket is not read)"
        )
    # Pillow's own bomb check would warn or refuse on its limit, not ours: off while the
    # header is read (only the header: Image.open decodes nothing), one thread at a time since
    # the limit is Pillow's global (external corpora are decoded on a thread pool).
    with _PILLOW_LIMIT:
        pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, UnidentifiedImageError, ValueError):
            raise Affect4kError(f"{what} {path}: not a readable image") from None
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit
    if width * height > max_pixels:
        raise Affect4kError(
            f"{what} {path}: {width}x{height} is {width * height:,} pixels, above the limit "
            f"of {max_pixels:,}"
        )


def read_image(path: Path, max_pixels: int = MAX_PIXELS, *, what: str = "image") -> np.ndarray:
    """The RGB ``uint8`` pixels of the image file ``path``, after :func:`check_image_size`."""
    check_image_size(path, max_pixels, what=what)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise Affect4kError(f"{what} {path}: not an image OpenCV can read")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
