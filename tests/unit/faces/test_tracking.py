"""Face tracks, shot cuts, identity clustering and subject choice; SubjectTracker (photos)."""

import numpy as np

from affect4k.faces.detectors import Detection
from affect4k.faces.tracking import (
    FaceTracks,
    ShotCuts,
    SubjectTracker,
    choose_subject,
    cluster_tracks,
)


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


def box(x: float, y: float, size: float) -> np.ndarray:
    return np.array([x, y, x + size, y + size], float)


def test_a_face_continues_its_track_by_overlap_and_a_new_one_starts_a_track():
    tracks = FaceTracks(max_gap=2)
    assert tracks.update(np.stack([box(100, 100, 80), box(400, 50, 40)]), cut=False) == [0, 1]
    # Listed the other way round and moved a little: each keeps its own track.
    assert tracks.update(np.stack([box(405, 52, 40), box(110, 104, 80)]), cut=False) == [1, 0]
    assert tracks.update(np.stack([box(250, 250, 60)]), cut=False) == [2]  # no overlap: new


def test_a_track_survives_a_short_miss_but_never_a_cut_or_a_long_gap():
    tracks = FaceTracks(max_gap=2)
    tracks.update(np.stack([box(100, 100, 80)]), cut=False)
    tracks.update(np.zeros((0, 4)), cut=False)
    assert tracks.update(np.stack([box(102, 100, 80)]), cut=False) == [0]  # missed one frame
    assert tracks.update(np.stack([box(102, 100, 80)]), cut=True) == [1]  # same place, new shot
    for _ in range(3):
        tracks.update(np.zeros((0, 4)), cut=False)
    assert tracks.update(np.stack([box(102, 100, 80)]), cut=False) == [2]  # gone too long


def test_shot_cuts_fire_on_a_new_scene_not_on_motion_or_noise():
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 256, (9, 16, 3), np.uint8).repeat(40, 0).repeat(40, 1)
    other = 255 - scene
    cuts = ShotCuts()
    assert not cuts.is_cut(scene)  # the first frame starts the clip, not a cut
    moved = np.roll(scene, 6, axis=1)
    noisy = np.clip(moved + rng.normal(0, 4, moved.shape), 0, 255).astype(np.uint8)
    assert not cuts.is_cut(noisy)
    assert cuts.is_cut(other)
    assert not cuts.is_cut(other)


def embeddings(centre: np.ndarray, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return centre + rng.normal(0, 0.01, (count, centre.size))


def test_tracks_of_one_person_become_one_identity_numbered_by_first_appearance():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 0.1, 128), rng.normal(0, 0.1, 128)  # ~1.4 apart
    tracks = [embeddings(b, 3, 0), embeddings(a, 1, 1), embeddings(b, 2, 2), embeddings(a, 4, 3)]
    np.testing.assert_array_equal(cluster_tracks(tracks, 0.5), [0, 1, 0, 1])
    np.testing.assert_array_equal(cluster_tracks(tracks, 2.0), [0, 0, 0, 0])
    np.testing.assert_array_equal(cluster_tracks(tracks[:1], 0.5), [0])
    assert len(cluster_tracks([], 0.5)) == 0


def test_the_subject_is_the_longest_on_screen_or_the_one_nearest_the_photo():
    centroids = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    longest = choose_subject(centroids, np.array([10, 50, 30]), None, 0.6)
    assert longest.identity == 1
    np.testing.assert_allclose(longest.distances, [1.0, 0.0, np.sqrt(2)])
    photo = choose_subject(centroids, np.array([10, 50, 30]), np.array([0.1, 0.9]), 0.6)
    assert photo.identity == 2 and photo.distances[2] < 0.2
    assert choose_subject(centroids, np.array([10, 50, 30]), np.array([5.0, 5.0]), 0.6) is None
    assert choose_subject(np.zeros((0, 2)), np.zeros(0), None, 0.6) is None


def test_a_short_track_between_two_people_joins_one_and_bridges_none():
    """A dissolve's blend (a short track halfway between A and G, each 0.56 apart) is within
    the threshold of both: it joins the nearer and never chains the two into one identity; a
    short track of the same person still joins them (the core tracks' one identity)."""
    rng = np.random.default_rng(2)
    a = rng.normal(0, 0.1, 128)
    g = a + 0.56 * _unit(rng.normal(0, 1, 128))
    blend = 0.45 * a + 0.55 * g
    tracks = [embeddings(a, 5, 0), embeddings(blend, 2, 1), embeddings(g, 5, 2)]
    core = np.array([True, False, True])
    np.testing.assert_array_equal(cluster_tracks(tracks, 0.5, core), [0, 1, 1])
    glimpse = embeddings(a + 0.3 * _unit(rng.normal(0, 1, 128)), 1, 3)
    labels = cluster_tracks([tracks[0], glimpse, tracks[2]], 0.5, core)
    np.testing.assert_array_equal(labels, [0, 0, 1])


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)
