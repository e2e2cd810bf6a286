"""PNG plots with matplotlib (Agg): study plots, FLOPs scaling, accuracy vs GFLOPs.

Every figure has axis labels with units, a title and a legend, and is written atomically.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .atomic_files import atomic_write  # noqa: E402
from .row import GFLOPS, STRATEGY, TEST_ACC


def save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
    return Path(path)


def study_plots(study, metric_names: Sequence[str], out_dir: Path) -> list[Path]:
    """Optimization history, Pareto front (2 objectives) or intermediate values, importances."""
    import optuna.visualization.matplotlib as ov
    from optuna.trial import TrialState

    written: list[Path] = []
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return written
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        if len(metric_names) == 1:
            ax = ov.plot_optimization_history(study, target_name=metric_names[0])
            written.append(save(ax.figure, out_dir / "history.png"))
            if any(t.intermediate_values for t in study.trials):
                ax = ov.plot_intermediate_values(study)
                ax.set_ylabel(f"{metric_names[0]} per epoch")
                written.append(save(ax.figure, out_dir / "intermediate.png"))
        else:
            for i, name in enumerate(metric_names):
                ax = ov.plot_optimization_history(study, target=lambda t, i=i: t.values[i],
                                                  target_name=name)
                written.append(save(ax.figure, out_dir / f"history_{name}.png"))
            if len(metric_names) in (2, 3):
                ax = ov.plot_pareto_front(study, target_names=list(metric_names))
                written.append(save(ax.figure, out_dir / "pareto.png"))
        if len(complete) >= 2 and len(study.best_trials[0].params) >= 1:
            target = None if len(metric_names) == 1 else (lambda t: t.values[0])
            try:
                ax = ov.plot_param_importances(study, target=target,
                                               target_name=metric_names[0])
                written.append(save(ax.figure, out_dir / "importances.png"))
            except (RuntimeError, ValueError, ZeroDivisionError):
                pass  # importances need variation in params and values; skip, not fake
    return written


def scaling_plot(frame: pd.DataFrame, x: str, path: Path, title: str, xlabel: str,
                 y: str = GFLOPS, ylabel: str = "forward GFLOPs per example") -> Path:
    """One line per strategy: ``y`` against ``x`` (e.g. GFLOPs vs image size)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for strategy, group in frame.groupby(STRATEGY, sort=True):
        group = group.sort_values(x)
        ax.plot(group[x], group[y], marker="o", label=strategy)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(title=STRATEGY, fontsize=8)
    return save(fig, path)


def pareto_plot(frame: pd.DataFrame, path: Path, acc: str = TEST_ACC,
                floors: dict[str, float] | None = None) -> Path:
    """Accuracy vs GFLOPs, one point per strategy with its interval (columns ``{acc}_lo``
    and ``{acc}_hi`` when present) as an error bar, Pareto-optimal points joined; dataset
    floors (majority, question-only) as horizontal lines."""
    frame = frame.dropna(subset=[acc, GFLOPS]).sort_values(GFLOPS)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.scatter(frame[GFLOPS], frame[acc], color="tab:blue")
    lo, hi = f"{acc}_lo", f"{acc}_hi"
    bars = frame.dropna(subset=[lo, hi]) if lo in frame and hi in frame else frame.iloc[:0]
    if not bars.empty:  # rows without stored per-question scores get no bar
        ax.errorbar(bars[GFLOPS], bars[acc], fmt="none", ecolor="tab:blue", alpha=0.6,
                    capsize=3, yerr=[bars[acc] - bars[lo], bars[hi] - bars[acc]],
                    label="95 % bootstrap interval")
    for _, row in frame.iterrows():
        ax.annotate(row[STRATEGY], (row[GFLOPS], row[acc]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    best, front = -1.0, []
    for _, row in frame.iterrows():
        if row[acc] > best:
            best = row[acc]
            front.append(row)
    if front:
        ax.plot([r[GFLOPS] for r in front], [r[acc] for r in front], color="tab:blue",
                alpha=0.5, label="Pareto front")
    for (name, value), style in zip((floors or {}).items(), ("--", ":", "-.")):
        ax.axhline(value, linestyle=style, color="grey", label=f"{name} floor ({value:.1f} %)")
    ax.set_xscale("log")
    ax.set_xlabel("forward GFLOPs per example (log scale)")
    ax.set_ylabel("VQA accuracy on test (%)")
    ax.set_title("Accuracy vs compute")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
