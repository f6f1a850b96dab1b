"""The release's crop hash and its required contact (affect4k.dataset.release)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from affect4k.core.errors import Affect4kError
from affect4k.dataset.metadata import ReleaseInfo
from affect4k.dataset.release import build_release, crop_hash, hash_distance


def test_the_crop_hash_survives_re_encoding_but_not_another_face():
    import cv2

    face = cv2.resize(skimage.data.astronaut()[30:230, 140:340], (112, 112))
    ok, jpeg = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    recoded = cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED)
    other = cv2.resize(skimage.data.coffee()[100:300, 200:400], (112, 112))
    assert hash_distance(crop_hash(face), crop_hash(recoded)) <= 4
    assert hash_distance(crop_hash(face), crop_hash(other)) > 16
    assert crop_hash(np.zeros((112, 112, 3), np.uint8)) == ""


def test_a_release_without_a_contact_is_refused(tmp_path: Path):
    info = ReleaseInfo(name="x", version="1.0.0", license="CC-BY-4.0", contact=None, description="")
    with pytest.raises(Affect4kError, match="release.contact"):
        build_release(
            tmp_path,
            info=info,
            base_version="1.0.0",
            videos=[],
            labels=tmp_path / "split.parquet",
            split=tmp_path / "split.csv",
            agreement=tmp_path / "agreement.csv",
            annotators_table=tmp_path / "annotators.csv",
            video_tables={},
            faces={},
            crops={},
            annotators=["a1"],
            settings={},
            takedowns=[],
        )
    assert not os.listdir(tmp_path)
