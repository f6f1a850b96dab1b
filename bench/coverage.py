"""Coverage of the tables' 95 % group-bootstrap intervals by number of groups; prints JSON.

Simulated datasets stand in for an evaluation set: ``G`` groups (sources) of ``--frames``
frames each, labels with a group mean and frame-level variation, and a prediction that follows
the label with a group-level bias and frame-level noise, so that most of the uncertainty of a
pooled CCC is between groups, as with real videos. The population values are those of
``--population`` groups. For each number of groups, ``--datasets`` datasets are scored with
the project's own functions (``group_sums``, ``resampled_totals``, ``interval``) and the
share of intervals that contain the population value is reported, for

- ``pooled``: the pooled CCC of one run (``tables.csv``'s ``mean_ccc``);
- ``per_video``: the mean of per-video CCCs (``video_ccc``);
- ``difference``: the paired difference of two runs' pooled CCC (``tied_with_best``, the
  ablation's delta against native),

each by the ``percentile`` interval (the earlier one) and the shipped ``t`` interval
(``affect4k.core.metrics.interval``). ``smallest_groups_covering_90`` is the smallest number of
groups from which the shipped method covers at least 90 % for all three at every number of
groups tried; ``docs/performance.md`` quotes this script's output.

    PYTHONPATH=src python bench/coverage.py --datasets 400
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from affect4k.core.metrics import (
    INTERVAL_METHODS,
    group_sums,
    interval,
    metrics_of_sums,
    ratio,
    resampled_totals,
    video_ccc_sums,
)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, nargs="+", default=[2, 3, 4, 6, 8, 10, 12, 20, 39])
    parser.add_argument("--datasets", type=int, default=400)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=100, help="frames per group")
    parser.add_argument("--population", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def simulate(rng: np.random.Generator, n_groups: int, frames: int):
    """Labels and two runs' predictions ``(G * frames, 2)`` and each frame's group: run B is
    run A with more noise, so their difference is a real one."""
    shape = (n_groups, 1, 2)
    labels = rng.normal(0, 0.25, shape) + rng.normal(0, 0.3, (n_groups, frames, 2))
    bias = rng.normal(0, 0.15, shape)
    run_a = 0.7 * labels + bias + rng.normal(0, 0.2, labels.shape)
    run_b = 0.7 * labels + bias + rng.normal(0, 0.3, labels.shape)
    groups = np.repeat(np.arange(n_groups), frames)
    return (
        labels.reshape(-1, 2),
        run_a.reshape(-1, 2),
        run_b.reshape(-1, 2),
        groups,
    )


def statistics_of(labels, run_a, run_b, groups, n_groups):
    """Group rows of the three statistics: pooled sums of A and B, per-video sums of A."""
    sums_a = group_sums(labels, run_a, groups, n_groups)
    sums_b = group_sums(labels, run_b, groups, n_groups)
    # One video per group here: its per-video sums are the group sums.
    videos = video_ccc_sums(sums_a, np.arange(n_groups), n_groups)
    return sums_a, sums_b, videos


def main() -> None:
    args = _parse()
    rng = np.random.default_rng(args.seed)
    big = statistics_of(*simulate(rng, args.population, args.frames), args.population)
    truth = {
        "pooled": float(metrics_of_sums(big[0].sum(axis=0))["mean_ccc"]),
        "per_video": float(ratio(big[2].sum(axis=0))),
        "difference": float(
            metrics_of_sums(big[0].sum(axis=0))["mean_ccc"]
            - metrics_of_sums(big[1].sum(axis=0))["mean_ccc"]
        ),
    }
    coverage: dict[str, dict[str, dict[int, float]]] = {
        name: {method: {} for method in INTERVAL_METHODS} for name in truth
    }
    for n_groups in args.groups:
        hits = {name: dict.fromkeys(INTERVAL_METHODS, 0) for name in truth}
        for index in range(args.datasets):
            sums_a, sums_b, videos = statistics_of(*simulate(rng, n_groups, args.frames), n_groups)
            totals = resampled_totals([sums_a, sums_b, videos], args.resamples, index)
            pooled_a = metrics_of_sums(totals[0])["mean_ccc"]
            pooled_b = metrics_of_sums(totals[1])["mean_ccc"]
            point_a = float(metrics_of_sums(sums_a.sum(axis=0))["mean_ccc"])
            point_b = float(metrics_of_sums(sums_b.sum(axis=0))["mean_ccc"])
            cases = {
                "pooled": (pooled_a, point_a),
                "per_video": (ratio(totals[2]), float(ratio(videos.sum(axis=0)))),
                "difference": (pooled_a - pooled_b, point_a - point_b),
            }
            for name, (replicates, estimate) in cases.items():
                for method in INTERVAL_METHODS:
                    low, high = interval(
                        replicates, estimate=estimate, groups=n_groups, method=method
                    )
                    hits[name][method] += int(low <= truth[name] <= high)
        for name in truth:
            for method in INTERVAL_METHODS:
                coverage[name][method][n_groups] = round(hits[name][method] / args.datasets, 3)
    covered = [
        n
        for n in args.groups
        if all(coverage[name]["t"][m] >= 0.9 for name in truth for m in args.groups if m >= n)
    ]
    print(
        json.dumps(
            {
                "datasets": args.datasets,
                "resamples": args.resamples,
                "frames_per_group": args.frames,
                "population": truth,
                "shipped": "t",
                "smallest_groups_covering_90": min(covered) if covered else None,
                "coverage": coverage,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
