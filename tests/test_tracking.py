"""SubjectTracker: stays on the subject, never takes a background face, re-acquires sensibly."""

import numpy as np

from affect4k.detectors import Detection
from affect4k.tracking import SubjectTracker


def face(x: float, y: float, size: float) -> Detection:
    bbox = np.array([x, y, x + size, y + size])
    return Detection(bbox, 0.99, np.tile(bbox[:2] + size / 2, (5, 1)))


def test_largest_face_becomes_the_subject_and_is_followed():
    tracker = SubjectTracker()
    assert tracker.update([face(500, 50, 40), face(100, 100, 200)]).bbox[0] == 100
    assert tracker.update([face(500, 50, 40), face(130, 110, 190)]).bbox[0] == 130


def test_background_face_is_never_taken_while_the_subject_is_gone():
    tracker = SubjectTracker(max_gap=5)
    tracker.update([face(100, 100, 200), face(600, 50, 60)])
    for _ in range(20):  # far longer than max_gap
        assert tracker.update([face(600, 50, 60)]) is None
    assert tracker.update([face(600, 50, 60), face(120, 90, 210)]).bbox[0] == 120


def test_a_subject_sized_face_elsewhere_is_taken_only_after_max_gap():
    tracker = SubjectTracker(max_gap=3)
    tracker.update([face(100, 100, 200)])
    elsewhere = face(900, 100, 200)
    assert [tracker.update([elsewhere]) is None for _ in range(3)] == [True, True, True]
    assert tracker.update([elsewhere]) is elsewhere


def test_nearest_subject_sized_face_is_reacquired_first():
    tracker = SubjectTracker(max_gap=0)
    tracker.update([face(100, 100, 200)])
    tracker.update([])
    near, far = face(150, 120, 200), face(900, 100, 220)
    assert tracker.update([far, near]) is near


def test_a_moving_subject_missed_for_a_few_frames_is_picked_up_where_it_went():
    tracker = SubjectTracker(max_gap=25)
    tracker.update([face(100, 100, 100)])
    for _ in range(3):  # undetected while it keeps moving 60 px a frame
        assert tracker.update([]) is None
    moved = face(100 + 4 * 60, 100, 100)
    assert tracker.update([moved]) is moved, "must not wait max_gap frames to re-acquire"
