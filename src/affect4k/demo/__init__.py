"""The offline stand-in for YouTube: synthetic 4K sources, their annotators, and test sets.

The default config must build a whole database with no network, so each demo "video" is
generated: a shipped face photo (see :mod:`affect4k.demo.affect_faces`) moves, scales and rolls
over a drifting textured background while a latent valence/arousal trajectory changes its
expression; a few short spans show no face so the face stage has something to reject. Four
synthetic annotators react to the latent with their own lag, bias, gain and noise and log it
at irregular times, like a joystick tool. Two small external sets in the Aff-Wild2 and
AffectNet layouts reuse the same rendering so a model trained on the demo can be evaluated
"on other databases".

Everything is a pure function of the arguments and ``seed``: reruns give byte-identical CSVs
and images and bit-identical decoded frames. The corpora (:mod:`affect4k.demo.corpora`) are
not imported here: they build on the database stage, which the demo videos must not depend on
(editing the database code would otherwise regenerate every source).
"""

from affect4k.demo.affect_faces import DEMO_FACES, latent_va, render_face
from affect4k.demo.annotators import annotator_trace
from affect4k.demo.scenes import (
    FaceTrack,
    demo_frames,
    exact_frame_rate,
    face_track,
    make_demo_video,
    video_seed,
)

__all__ = [
    "DEMO_FACES",
    "FaceTrack",
    "annotator_trace",
    "demo_frames",
    "exact_frame_rate",
    "face_track",
    "latent_va",
    "make_demo_video",
    "render_face",
    "video_seed",
]
