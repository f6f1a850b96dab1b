"""Table layouts every stage shares: the dimensions and the columns that name them.

The bottom layer of the package (it imports nothing), so a numpy-only stage can name the
columns of a table without importing the stage that writes it.
"""

#: The two affect dimensions, in the order of every (valence, arousal) array and column pair.
DIMENSIONS = ("valence", "arousal")
#: The face box columns of ``results/faces/{video}.parquet``, in full-resolution clip pixels.
BOX_COLUMNS = ("x1", "y1", "x2", "y2")
#: Its five landmark columns (eyes, nose tip, mouth corners; x then y), in the order
#: :func:`affect4k.faces.align.align_face` takes them.
LANDMARK_COLUMNS = tuple(f"lm{i}_{axis}" for i in range(5) for axis in ("x", "y"))
#: Parquet columns after ``frame``, ``time_s`` and ``face``, in the order of a row's geometry.
GEOMETRY_COLUMNS = ["score", *BOX_COLUMNS, *LANDMARK_COLUMNS]
#: Boolean annotation column of an imported corpus: True rows are still images, not frames.
STATIC_COLUMN = "static"
#: Columns of ``results/predictions/{run}/{eval_set}.parquet``: the labels beside the predictions.
PREDICTION_COLUMNS = ("video", "frame", "valence", "arousal", "valence_pred", "arousal_pred")
#: The scores of one set of predictions (``affect4k.core.metrics.va_metrics``).
METRIC_NAMES = ("valence_ccc", "arousal_ccc", "mean_ccc", "valence_mse", "arousal_mse")
#: The splits a run is scored on after an epoch. Never the test split: whatever a run's history
#: shows may steer a choice (best.keras, a reader's), and no choice may read a test score.
SCORED_SPLITS = ("train", "validation")
#: Columns of a run's ``history.csv``: one row per epoch.
HISTORY_COLUMNS = ("epoch", "loss", *(f"{s}_{m}" for s in SCORED_SPLITS for m in METRIC_NAMES))
#: What each metric column of a table comes with: its 95 % bootstrap interval and, on a row
#: averaging several seeds, the standard deviation over them (NaN elsewhere).
INTERVAL_SUFFIXES = ("_lo", "_hi")
#: Columns of ``results/tables.csv``: one row per (run, evaluation set), and one ``mean`` row
#: per (configuration trained with several seeds, evaluation set).
TABLE_COLUMNS = (
    "run",
    "config",
    "seed",
    "model",
    "resolution",
    "eval_set",
    "scored",
    "contaminated",
    "selected_for",
    "tied_with_best",
    *(f"{m}{suffix}" for m in METRIC_NAMES for suffix in ("", *INTERVAL_SUFFIXES, "_sd")),
    # The per-video CCC: the mean over videos of each video's mean CCC, beside the pooled one.
    *(f"video_ccc{suffix}" for suffix in ("", *INTERVAL_SUFFIXES, "_sd")),
    # Why a row has no interval (too few groups), empty where it has one.
    "interval_note",
    "frames",
    "videos",
    "groups",
)
#: Columns of ``results/ablation/spans/{video}.parquet``: per frame, the native pixels the
#: subject's crop square spans (NaN without a face) and the clip's height.
SPAN_COLUMNS = ("frame", "face", "span", "source_height")
#: Columns of ``results/ablation.csv``: one row per (grid cell, seed, evaluation set, face bin:
#: ``all`` or the height its crop is resolved from, ``affect4k.evaluation.ablation``), and a seed
#: ``mean`` row per cell with several seeds; ``selected`` marks the cell its configuration keeps,
#: chosen on validation.
ABLATION_COLUMNS = (
    "run",
    "model",
    "resolution",
    "height",
    "crop_size",
    "input_size",
    "seed",
    "eval_set",
    "face_bin",
    "selected",
    "frames",
    "groups",
    *(f"{m}{suffix}" for m in METRIC_NAMES for suffix in ("", *INTERVAL_SUFFIXES)),
    # The paired difference in mean CCC against the native cell (same run, crop size, input
    # size, seeds, face bin and frames), its interval, p, Holm-adjusted p over the grid and
    # the decision at 5 % after that adjustment.
    *(f"delta_ccc{suffix}" for suffix in ("", *INTERVAL_SUFFIXES)),
    "delta_p",
    "delta_p_holm",
    "delta_significant",
    "interval_note",
)
