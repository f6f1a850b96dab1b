"""Table layouts every stage shares: the dimensions and the columns that name them.

The bottom layer of the package (it imports nothing), so a numpy-only stage can name the
columns of a table without importing the stage that writes it.
"""

#: The two affect dimensions, in the order of every (valence, arousal) array and column pair.
DIMENSIONS = ("valence", "arousal")
#: Boolean annotation column of an imported corpus: True rows are still images, not frames.
STATIC_COLUMN = "static"
#: Columns of ``results/predictions/{run}/{eval_set}.parquet``: the labels beside the predictions.
PREDICTION_COLUMNS = ("video", "frame", "valence", "arousal", "valence_pred", "arousal_pred")
#: The scores of one set of predictions (``affect4k.metrics.va_metrics``).
METRIC_NAMES = ("valence_ccc", "arousal_ccc", "mean_ccc", "valence_mse", "arousal_mse")
#: The splits a run is scored on after an epoch.
SPLITS = ("train", "test")
#: Columns of a run's ``history.csv``: one row per epoch.
HISTORY_COLUMNS = ("epoch", "loss", *(f"{s}_{m}" for s in SPLITS for m in METRIC_NAMES))
#: Columns of ``results/tables.csv``: one row per (run, evaluation set).
TABLE_COLUMNS = (
    "run",
    "model",
    "resolution",
    "eval_set",
    "scored",
    "valence_ccc",
    "arousal_ccc",
    "mean_ccc",
    "valence_mse",
    "arousal_mse",
    "frames",
    "videos",
)
#: Columns of ``results/ablation.csv``: one row per (grid cell, face-size bin).
ABLATION_COLUMNS = (
    "run",
    "model",
    "resolution",
    "input_size",
    "face_bin",
    "frames",
    "valence_ccc",
    "arousal_ccc",
    "mean_ccc",
    "valence_mse",
    "arousal_mse",
)
