from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.detectors import make_detector
    from affect4k.faces import IdentitySettings, extract_faces

    extract_faces(
        Path(sm.input.clip),
        Path(sm.output.table),
        Path(sm.output.crops),
        identities_path=Path(sm.output.identities),
        subject_photo=Path(sm.input.subject[0]) if sm.input.subject else None,
        identity=IdentitySettings(
            cluster_threshold=sm.params.cluster_threshold,
            subject_threshold=sm.params.subject_threshold,
            embed_every=sm.params.embed_every,
        ),
        detector=make_detector(sm.params.detector, sm.params.model, min_score=sm.params.min_score),
        video_id=sm.wildcards.video,
        detect_width=sm.params.detect_width,
        min_face=sm.params.min_face,
    )
