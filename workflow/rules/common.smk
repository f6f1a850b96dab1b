from pathlib import Path

# SRC (the package code next to the workflow) is on sys.path: the Snakefile put it there.
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake_interface_executor_plugins.settings import ExecMode

from affect4k.labels.calibration import trace_path as calibration_trace
from affect4k.core.errors import Affect4kError
from affect4k.core.columns import DIMENSIONS
from affect4k.config.video_list import (
    VIDEO_ID_PATTERN,
    demo_videos,
    read_videos,
    source_group,
)
from affect4k.video.download import tracked_source
from affect4k.config.provenance import code_digest
from affect4k.config.runs import NATIVE, parse_resolution
from affect4k.dataset.takedown import purge, read_takedowns, taken_down, video_files
from affect4k.config.settings import (
    DATABASE_SETS,
    DOWNLOADED_WEIGHTS,
    SCORED_SPLIT,
    check_calibration,
    check_trained_on,
    job_settings,
    resolve_training,
    scored_parts,
    seen_corpora,
    seen_frames,
)

# Everything that can be checked before a job runs is checked here, naming the config key.
try:
    TRAINING_PLAN = resolve_training(config)
    try:
        VIDEOS = {
            entry.video_id: entry
            for entry in (
                read_videos(config["videos"])
                if "videos" in config
                else demo_videos(list(config["demo"]["videos"]))
            )
        }
    except Affect4kError as error:
        raise Affect4kError(f"videos: {error}") from None
    try:
        TAKEDOWNS = read_takedowns(config["takedown"]) if config["takedown"] else []
    except Affect4kError as error:
        raise Affect4kError(f"takedown: {error}") from None
    # A taken-down video leaves the list before anything is planned (affect4k.dataset.takedown).
    TAKEN_DOWN = taken_down(TAKEDOWNS, VIDEOS)
    for _video in TAKEN_DOWN:
        del VIDEOS[_video]
    check_trained_on(TRAINING_PLAN.runs, VIDEOS)
    check_calibration(config, VIDEOS)
except Affect4kError as error:
    raise WorkflowError(f"config key {error}") from None
ANNOTATIONS = Path(config["annotations"])


wildcard_constraints:
    video=VIDEO_ID_PATTERN.strip("^$"),


def config_section(section, *keys):
    """The keys of one config section that a stage reads, under their config names: a rule
    hands its script this (or the whole section, where the stage reads all of it), so a
    changed key reruns only the stages that read it (Snakemake compares params)."""
    return {key: config[section][key] for key in keys}


def video_entry(video):
    """The TSV row of one video (KeyError here means a target names an unlisted video)."""
    return VIDEOS[video]


def package_code(script):
    """Digest of the package code a workflow script runs (affect4k.config.provenance): as a param of
    its rule, editing a module the job imports makes the rule's outputs stale."""
    return code_digest(WORKFLOW_DIR / "workflow/scripts" / script, SRC)


def all_cores():
    """Every core given with --cores (the GPU rules take them all, so a workstation runs one
    at a time); 1 where none are given, as for --dag, --summary or --report."""
    return workflow.resource_settings.cores or 1


def dry_run():
    """Whether this run only plans: the command line says so while the workflow loads, the
    executor once the DAG is built."""
    return workflow.output_settings.dryrun or workflow.dryrun


# The files of taken-down videos go once the workflow runs, whatever its target; a dry run
# or another process of this run (a cluster job) deletes nothing.
if TAKEN_DOWN and workflow.exec_mode == ExecMode.DEFAULT:
    if dry_run():
        for _path in video_files(TAKEN_DOWN):
            logger.info(f"takedown: would delete {_path}")
    else:
        try:
            for _path in purge(TAKEN_DOWN):
                logger.info(f"takedown: deleted {_path}")
        except Affect4kError as error:
            raise WorkflowError(str(error)) from None


def subject_photo(wildcards):
    """The video's subject photo (videos.tsv's subject column), an input when given."""
    photo = video_entry(wildcards.video).subject
    return [photo] if photo else []


def download_inputs(wildcards):
    """Local sources (the demo's, or files a user lists) are inputs, so Snakemake makes them;
    one whose path has braces is tracked through a link (see tracked_source). A dry run makes
    no link: it tracks the one a real run made, or plans the download without it."""
    source = tracked_source(
        wildcards.video, video_entry(wildcards.video).url, make_link=not dry_run()
    )
    return [source] if source else []


def video_traces(video):
    """Every raw trace file of one video (each listed annotator, each dimension)."""
    return [
        ANNOTATIONS / video / f"{annotator}.{dimension}.csv"
        for annotator in config["annotators"]
        for dimension in DIMENSIONS
    ]


def raw_traces(wildcards):
    return video_traces(wildcards.video)


RUNS = TRAINING_PLAN.runs
# Said by the tables job where it is planned (a dry run too), never by a --report, --summary or
# another target's run: the runs a table lacks, each with the config key that would add it.
LEFT_OUT_RUNS = "\n".join(
    ["results/tables.csv: the runs of training.runs, scored on every evaluation set"]
    + [f"WARNING: config key {warning}" for warning in TRAINING_PLAN.warnings]
).translate({ord("{"): "{{", ord("}"): "}}"})
PRETRAIN = TRAINING_PLAN.pretrain
CORPORA = config["evaluation"]["corpora"]
SCORED = scored_parts(config)
EVAL_SETS = list(SCORED)


def groups_table(eval_set):
    """The table naming each scored frame's group (what the bootstrap resamples)."""
    if eval_set in DATABASE_SETS:
        return "results/split.csv"
    return f"results/external/{eval_set}/annotations.parquet"


def table_entries():
    """One results-table entry per (run, evaluation set): what it is, where its predictions
    are, and which of its frames its weights saw (never scored, or the row is contaminated).
    """
    entries = []
    for run, settings in RUNS.items():
        for eval_set in EVAL_SETS:
            exclude, contaminated = seen_frames(
                settings.get("trained_on", []), eval_set
            )
            scored = SCORED[eval_set]
            entries.append(
                {
                    "run": run,
                    "model": settings["model"],
                    "resolution": settings["resolution"],
                    "eval_set": eval_set,
                    "scored": "unseen" if exclude and scored == "all" else scored,
                    "predictions": f"results/predictions/{run}/{eval_set}.parquet",
                    "config": settings["config"],
                    "seed": settings["seed"],
                    "entry": settings["entry"],
                    "ablation_of": settings["ablation_of"],
                    "groups": groups_table(eval_set),
                    "exclude": list(exclude),
                    "contaminated": contaminated,
                    "database": eval_set in DATABASE_SETS,
                    "seen_corpora": seen_corpora(settings, PRETRAIN),
                }
            )
    return entries


def ablation_cells():
    """Every cell of the resolution ablation (the grid runs and the runs they repeat, every
    seed) on the validation split, which chooses among them, and on the test split."""
    bases = {
        settings["ablation_of"] for settings in RUNS.values() if settings["ablation_of"]
    }
    names = [
        name
        for name, settings in RUNS.items()
        if settings["ablation_of"] or settings["config"] in bases
    ]
    return [
        {
            "run": RUNS[name]["ablation_of"] or RUNS[name]["config"],
            "model": RUNS[name]["model"],
            "resolution": RUNS[name]["resolution"],
            "input_size": RUNS[name]["input_size"],
            "seed": RUNS[name]["seed"],
            "eval_set": eval_set,
            "predictions": f"results/predictions/{name}/{eval_set}.parquet",
        }
        for name in names
        for eval_set in DATABASE_SETS
    ]


ABLATION = ablation_cells()
#: The crops the ablation's cells train on beside the face stage's own (native, 112 px).
ABLATION_RESOLUTIONS = sorted(
    {cell["resolution"] for cell in ABLATION if cell["resolution"] != NATIVE}
)


def faces_dir(resolution):
    return "results/faces" if resolution == NATIVE else f"results/faces_{resolution}"


def database_inputs(resolution):
    """The labels with their sides and every video's crops and face table at one resolution."""
    return {
        "annotations": "results/split.parquet",
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
    database = {
        "annotations": "results/split.parquet",
        "faces": faces_dir(RUNS[wildcards.run]["resolution"]),
    }
    sources = {
        **{name: database for name in DATABASE_SETS},
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
