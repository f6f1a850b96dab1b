from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.faces.detectors import make_detector
    from affect4k.faces.extract import extract_faces
    from affect4k.faces.identity import IdentitySettings

    faces = sm.params.faces
    extract_faces(
        Path(sm.input.clip),
        Path(sm.output.table),
        Path(sm.output.crops),
        identities_path=Path(sm.output.identities),
        subject_photo=Path(sm.input.subject[0]) if sm.input.subject else None,
        identity=IdentitySettings.from_section(faces),
        detector=make_detector(faces["detector"], faces["model"], min_score=faces["min_score"]),
        video_id=sm.wildcards.video,
        detect_width=faces["detect_width"],
        min_face=faces["min_face"],
    )
