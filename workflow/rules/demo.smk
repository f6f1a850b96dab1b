# Only a config with a `demo:` section (config/config.yaml) has these rules, and they write
# only under resources/demo/: a user's video or trace is never generated, whatever its id.
DEMO = config.get("demo")


if DEMO:

    rule demo_video:
        """A synthetic 4K source video and its four annotators' raw traces (offline demo)."""
        output:
            video="resources/demo/sources/{video}.mp4",
            traces=expand(
                "resources/demo/annotations/{{video}}/{annotator}.{dimension}.csv",
                annotator=config["annotators"],
                dimension=DIMENSIONS,
            ),
        log:
            "logs/demo_video/{video}.log",
        benchmark:
            "benchmarks/demo_video/{video}.tsv"
        wildcard_constraints:
            video="|".join(DEMO["videos"]),
        conda:
            "../../envs/ingest.yaml"
        threads: 1
        resources:
            mem_mb=2000,
        params:
            code=package_code("demo_video.py"),
            spec=lambda wildcards: DEMO["videos"][wildcards.video],
            demo=config_section(
                "demo", "width", "height", "seconds", "seed", "cue", "face_size"
            ),
            annotators=config["annotators"],
        script:
            "../scripts/demo_video.py"

    rule demo_corpus:
        """A small synthetic external corpus in Aff-Wild2 or AffectNet layout (offline demo)."""
        output:
            directory("resources/demo/corpora/{corpus}"),
        log:
            "logs/demo_corpus/{corpus}.log",
        wildcard_constraints:
            corpus="|".join(DEMO["corpora"]),
        conda:
            "../../envs/ingest.yaml"
        threads: 1
        params:
            code=package_code("demo_corpus.py"),
            spec=lambda wildcards: DEMO["corpora"][wildcards.corpus],
            demo=config_section("demo", "seed"),
        script:
            "../scripts/demo_corpus.py"
