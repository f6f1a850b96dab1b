"""Reading Aff-Wild2's valence/arousal files (affect4k.evaluation.affwild)."""

from __future__ import annotations

import numpy as np
import pytest

from affect4k.core.errors import Affect4kError
from affect4k.evaluation.affwild import read_affwild2_va


def test_read_affwild2_va_maps_marker_to_nan(tmp_path):
    path = tmp_path / "video1.txt"
    path.write_text("valence,arousal\n0.5,-0.25\n-5,-5\n-5,0.1\n-1,1\n")
    table = read_affwild2_va(path)
    assert list(table.columns) == ["frame", "valence", "arousal"]
    np.testing.assert_array_equal(table["frame"], [0, 1, 2, 3])
    np.testing.assert_array_equal(table["valence"], [0.5, np.nan, np.nan, -1.0])
    np.testing.assert_array_equal(table["arousal"], [-0.25, np.nan, 0.1, 1.0])


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("arousal,valence\n0,0\n", 1, "header"),
        ("valence,arousal\n0,0\n0.2,1.5\n", 3, "arousal 1.5 is outside"),
        ("valence,arousal\n0,0\n-4,0\n", 3, "valence -4.0 is outside"),
        ("valence,arousal\n0,nan\n", 2, "'nan'"),
        ("valence,arousal\n0,0\n0,x\n", 3, "'x'"),
    ],
)
def test_read_affwild2_va_names_file_and_line(tmp_path, text, line, fragment):
    path = tmp_path / "video2.txt"
    path.write_text(text)
    with pytest.raises(Affect4kError) as caught:
        read_affwild2_va(path)
    assert str(path) in str(caught.value)
    assert f"line {line}:" in str(caught.value)
    assert fragment in str(caught.value)


def test_read_affwild2_va_refuses_header_only(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("valence,arousal\n")
    with pytest.raises(Affect4kError, match="no frame lines"):
        read_affwild2_va(path)
