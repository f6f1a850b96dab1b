"""Hostile input that spans modules: every image the package reads is sized from its
header first (affect4k.core.images), whichever stage or command reads it."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from helpers.hostile import pixel_bomb

from affect4k.core.errors import Affect4kError
from affect4k.core.images import read_image
from affect4k.faces.identity import read_photo


def test_an_image_above_the_pixel_limit_is_refused_from_its_header(tmp_path):
    bomb = pixel_bomb(tmp_path / "bomb.png")
    with pytest.raises(Affect4kError, match=r"image .*bomb\.png: 30000x30000 is 900,000,000"):
        read_image(bomb)
    # The limit is the caller's (affect4k predict --max-pixels).
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((20, 30, 3), np.uint8))
    assert read_image(photo).shape == (20, 30, 3)
    with pytest.raises(Affect4kError, match="600 pixels, above the limit of 599"):
        read_image(photo, 599)


def test_the_subject_photo_of_the_face_job_goes_through_the_same_limit(tmp_path):
    """videos.tsv's subject column is read by identity.read_photo in the face job."""
    bomb = pixel_bomb(tmp_path / "me.png")
    with pytest.raises(Affect4kError, match=r"subject photo .*me\.png: 30000x30000"):
        read_photo(bomb)


def test_a_fifo_or_a_missing_file_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "me.png"
    os.mkfifo(fifo)  # opening it would block until a writer came
    with pytest.raises(Affect4kError, match=r"subject photo .*me\.png: not a regular file"):
        read_photo(fifo)
    with pytest.raises(Affect4kError, match=r"subject photo .*gone\.png does not exist"):
        read_photo(tmp_path / "gone.png")


def test_an_existing_output_that_is_a_pixel_bomb_is_not_decoded_to_read_its_mark(tmp_path):
    """affect4k predict reads an existing figure's text chunks, which Pillow finds by decoding
    the whole image: a bomb in its place is sized first and is simply not predict's."""
    from affect4k.commands.predict_inputs import written_by_predict

    assert not written_by_predict(pixel_bomb(tmp_path / "out.png"))
