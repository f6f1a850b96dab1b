"""Photos and the ``affect4k predict`` command line for its unit and workflow tests; the
``photos`` fixture reaches them through ``pytest_plugins`` in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from affect4k.commands.cli import main


def write_image(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder: the astronaut (a face photo scikit-image ships), a cup of coffee (no face)."""
    folder = tmp_path_factory.mktemp("photos")
    write_image(folder / "a_astronaut.png", skimage.data.astronaut())
    write_image(folder / "b_coffee.jpg", skimage.data.coffee())
    return folder


def predict(*args: object) -> int:
    return main(["predict", *map(str, args)])
