import sys
from pathlib import Path

# The workflow always runs the package code that sits next to it (scripts do the same through
# workflow/scripts/affect4k_path.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from snakemake.exceptions import WorkflowError

from affect4k.errors import Affect4kError
from affect4k.manifest import VIDEO_ID_PATTERN, read_videos
from affect4k.download import tracked_source
from affect4k.runs import NATIVE, expand_runs, frame_size

try:
    VIDEOS = {entry.video_id: entry for entry in read_videos(config["videos"])}
except Affect4kError as error:
    raise WorkflowError(f"config key 'videos': {error}") from None
ANNOTATIONS = Path(config["annotations"])
DIMENSIONS = ["valence", "arousal"]


wildcard_constraints:
    video=VIDEO_ID_PATTERN.strip("^$"),


def video_entry(video):
    """The TSV row of one video (KeyError here means a target names an unlisted video)."""
    return VIDEOS[video]


def download_inputs(wildcards):
    """Local sources (the demo's, or files a user lists) are inputs, so Snakemake makes them;
    one whose path has braces is tracked through a link (see tracked_source)."""
    source = tracked_source(wildcards.video, video_entry(wildcards.video).url)
    return [source] if source else []


def raw_traces(wildcards):
    return [
        ANNOTATIONS / wildcards.video / f"{annotator}.{dimension}.csv"
        for annotator in config["annotators"]
        for dimension in DIMENSIONS
    ]


TRAINING = config["training"]
RUNS = expand_runs(
    TRAINING["runs"],
    TRAINING["defaults"],
    TRAINING["ablation"]["runs"],
    TRAINING["ablation"]["resolution"],
)
PRETRAIN = {name: {**TRAINING["defaults"], **entry} for name, entry in TRAINING["pretrain"].items()}
CORPORA = config["evaluation"]["corpora"]
EVAL_SETS = ["test", *CORPORA]


def faces_dir(resolution):
    return "results/faces" if resolution == NATIVE else f"results/faces_{resolution}"


def database_inputs(resolution):
    """The annotation table and every video's crops and face table at one resolution."""
    return {
        "annotations": "results/annotations.parquet",
        "faces": [
            f"{faces_dir(resolution)}/{video}.{ext}" for video in VIDEOS for ext in ("npy", "parquet")
        ],
    }


def corpus_inputs(corpus):
    return {
        "annotations": f"results/external/{corpus}/annotations.parquet",
        "faces": f"results/external/{corpus}/faces",
    }


def pretrained_input(settings):
    """A "pretrain:<name>" initialisation is the model file of that pretraining run."""
    source = settings.get("pretrained")
    if source and source.startswith("pretrain:"):
        name = source.removeprefix("pretrain:")
        if name not in PRETRAIN:
            raise WorkflowError(f"pretrained: {source!r} names no entry of training.pretrain")
        return {"pretrained": f"results/pretrained/{name}/model.keras"}
    return {}


def train_inputs(wildcards):
    settings = RUNS[wildcards.run]
    return {**database_inputs(settings["resolution"]), **pretrained_input(settings)}


def pretrain_inputs(wildcards):
    settings = PRETRAIN[wildcards.name]
    if settings.get("corpus") not in CORPORA:
        raise WorkflowError(
            f"training.pretrain.{wildcards.name}.corpus must name one of evaluation.corpora"
        )
    return {**corpus_inputs(settings["corpus"]), **pretrained_input(settings)}
