import sys
from pathlib import Path

# The workflow always runs the package code that sits next to it (scripts do the same through
# workflow/scripts/common.py).
SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from affect4k.errors import Affect4kError
from affect4k.layout import DIMENSIONS
from affect4k.manifest import VIDEO_ID_PATTERN, read_videos
from affect4k.download import tracked_source
from affect4k.provenance import code_digest
from affect4k.runs import NATIVE, source_height
from affect4k.settings import (
    DOWNLOADED_WEIGHTS,
    SCORED_SPLIT,
    check_config,
    job_settings,
    resolve_training,
    scored_parts,
)

# Everything that can be checked before a job runs is checked here, naming the config key.
try:
    check_config(config)
    TRAINING = resolve_training(config)
    try:
        VIDEOS = {entry.video_id: entry for entry in read_videos(config["videos"])}
    except Affect4kError as error:
        raise Affect4kError(f"videos: {error}") from None
except Affect4kError as error:
    raise WorkflowError(f"config key {error}") from None
for warning in TRAINING.warnings:
    logger.warning(f"config key {warning}")
ANNOTATIONS = Path(config["annotations"])


wildcard_constraints:
    video=VIDEO_ID_PATTERN.strip("^$"),


def video_entry(video):
    """The TSV row of one video (KeyError here means a target names an unlisted video)."""
    return VIDEOS[video]


def package_code(script):
    """Digest of the package code a workflow script runs (affect4k.provenance): as a param of
    its rule, editing a module the job imports makes the rule's outputs stale."""
    return code_digest(Path(workflow.basedir) / "workflow/scripts" / script, SRC)


def all_cores():
    """Every core given with --cores (the GPU rules take them all, so a workstation runs one
    at a time); 1 where none are given, as for --dag, --summary or --report."""
    return workflow.resource_settings.cores or 1


def dry_run():
    """Whether this run only plans: the command line says so while the workflow loads, the
    executor once the DAG is built."""
    return workflow.output_settings.dryrun or workflow.dryrun


def download_inputs(wildcards):
    """Local sources (the demo's, or files a user lists) are inputs, so Snakemake makes them;
    one whose path has braces is tracked through a link (see tracked_source). A dry run makes
    no link: it tracks the one a real run made, or plans the download without it."""
    source = tracked_source(
        wildcards.video, video_entry(wildcards.video).url, make_link=not dry_run()
    )
    return [source] if source else []


def raw_traces(wildcards):
    return [
        ANNOTATIONS / wildcards.video / f"{annotator}.{dimension}.csv"
        for annotator in config["annotators"]
        for dimension in DIMENSIONS
    ]


RUNS = TRAINING.runs
PRETRAIN = TRAINING.pretrain
CORPORA = config["evaluation"]["corpora"]
SCORED = scored_parts(config)
EVAL_SETS = list(SCORED)


def ablation_cells():
    """Every cell of the resolution ablation: the grid runs and the runs they repeat."""
    cells = [name for name, settings in RUNS.items() if settings["ablation_of"]]
    cells = sorted({RUNS[name]["ablation_of"] for name in cells}) + cells
    return [
        {
            "run": RUNS[name]["ablation_of"] or name,
            "model": RUNS[name]["model"],
            "resolution": RUNS[name]["resolution"],
            "input_size": RUNS[name]["input_size"],
            "predictions": f"results/predictions/{name}/test.parquet",
        }
        for name in cells
    ]


ABLATION = ablation_cells()


def faces_dir(resolution):
    return "results/faces" if resolution == NATIVE else f"results/faces_{resolution}"


def database_inputs(resolution):
    """The annotation table and every video's crops and face table at one resolution."""
    return {
        "annotations": "results/annotations.parquet",
        "faces": [
            f"{faces_dir(resolution)}/{video}.{ext}"
            for video in VIDEOS
            for ext in ("npy", "parquet")
        ],
    }


def corpus_inputs(corpus):
    return {
        "annotations": f"results/external/{corpus}/annotations.parquet",
        "faces": f"results/external/{corpus}/faces",
    }


def eval_sets(wildcards):
    """Each evaluation set of a run by name: its annotation table, crops and scored split."""
    sources = {
        "test": {
            "annotations": "results/annotations.parquet",
            "faces": faces_dir(RUNS[wildcards.run]["resolution"]),
        },
        **{corpus: corpus_inputs(corpus) for corpus in CORPORA},
    }
    return {
        name: {**source, "split": SCORED_SPLIT[SCORED[name]]}
        for name, source in sources.items()
    }


def pretrained_input(settings):
    """A weights file (a pretraining run's model or the user's own) is an input of the job."""
    source = settings.get("pretrained")
    return {} if source in (None, *DOWNLOADED_WEIGHTS) else {"pretrained": source}


def train_inputs(wildcards):
    settings = RUNS[wildcards.run]
    return {**database_inputs(settings["resolution"]), **pretrained_input(settings)}


def pretrain_inputs(wildcards):
    settings = PRETRAIN[wildcards.name]
    return {**corpus_inputs(settings["corpus"]), **pretrained_input(settings)}
