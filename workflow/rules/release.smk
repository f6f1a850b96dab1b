# The database as a dataset others can use (affect4k.dataset.release, docs/release.md): labels and
# where the faces are, never pixels. Taken-down videos are already out of VIDEOS (common.smk).
import dataclasses

from affect4k.dataset.metadata import release_version

RELEASE = config["release"]
RELEASE_VERSION = release_version(RELEASE["version"], len(TAKEDOWNS))


rule release:
    """The release folder: manifest, traces, agreement, croissant.json, datasheet, licence,
    changelog and checksums."""
    input:
        labels="results/split.parquet",
        split="results/split.csv",
        agreement="results/agreement.csv",
        annotators="results/annotators.csv",
        tables=expand("results/annotations/{video}.parquet", video=VIDEOS),
        faces=expand("results/faces/{video}.parquet", video=VIDEOS),
        crops=expand("results/faces/{video}.npy", video=VIDEOS),
        takedown=[config["takedown"]] if config["takedown"] else [],
    output:
        directory("results/release"),
    log:
        "logs/release.log",
    conda:
        "../../envs/ingest.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        code=package_code("release.py"),
        release={**RELEASE, "version": RELEASE_VERSION},
        base_version=RELEASE["version"],
        videos=[
            {
                key: value
                for key, value in dataclasses.asdict(entry).items()
                if key != "subject"
            }
            for entry in VIDEOS.values()
        ],
        annotators=config["annotators"],
        settings={
            section: config[section]
            for section in ("download", "clips", "faces", "annotation", "database")
        },
        takedowns=[dataclasses.asdict(request) for request in TAKEDOWNS],
    script:
        "../scripts/release.py"
