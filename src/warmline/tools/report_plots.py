"""PNG plots of a :class:`warmline.tools.report.Report` (``warmline report --plot DIR``).

matplotlib comes with the ``warmline[report]`` extra and is imported inside
:func:`write_plots` only. Four files:

- ``durations.png``: per function, Init Duration of cold starts and Duration of warm
  invocations (warm-ups left out), as strip plots on a log scale;
- ``greeting.png`` and ``first_token.png``: per call, setup -> greeting and prompt ->
  first token, cold calls apart from warm, with the p50/p95/p99 lines and the budget line;
- ``waterfalls.png``: the calls that kept their caller waiting longest, one row each:
  every invocation's INIT and run on one time axis, a tick where it first spoke and, with
  a budget, a dashed line where its first words were due.
"""

from __future__ import annotations

import os
from typing import Any

from warmline.tools.report import Report, percentile, waits

__all__ = ["marks", "write_plots"]

_COLD, _WARM, _BUDGET = "#d9534f", "#2a7ab0", "#222222"


def marks(values: list[float], budget_ms: float | None) -> list[tuple[str, float]]:
    """The vertical lines drawn over a distribution: its p50, p95 and p99, and the budget."""
    out: list[tuple[str, float]] = []
    for pct in (50, 95, 99):
        value = percentile(values, pct)
        if value is not None:
            out.append((f"p{pct} {value:.1f} ms", value))
    if budget_ms is not None:
        out.append((f"budget {budget_ms:g} ms", budget_ms))
    return out


def _distribution(plt: Any, report: Report, name: str, budget_ms: float | None, path: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, cold, color in (("cold calls", True, _COLD), ("warm calls", False, _WARM)):
        values = waits(report, name, cold=cold)
        ax.hist(values, bins=20, alpha=0.7, color=color, label=f"{label} ({len(values)})")
    styles = iter([":", "--", "-.", "-"])
    for label, x in marks(waits(report, name), budget_ms):
        budget = label.startswith("budget")
        ax.axvline(
            x,
            color=_BUDGET if budget else "#555555",
            linestyle="-" if budget else next(styles),
            linewidth=2 if budget else 1,
            label=label,
        )
    ax.set_xlabel(f"{name} (ms, the caller's wait)")
    ax.set_ylabel("calls")
    ax.set_title(f"{name}, cold vs warm calls (all calls' percentiles)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _waterfalls(plt: Any, report: Report, count: int, budget_ms: float | None, path: str) -> None:
    calls = sorted(report.calls, key=lambda c: c.worst_wait_ms, reverse=True)[: max(1, count)]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * max(1, len(calls))))
    for row, call in enumerate(calls):
        if not call.spans:
            continue
        origin = call.spans[0].arrival
        for span in call.spans:
            at = (span.arrival - origin) * 1000
            if span.init_ms:
                ax.broken_barh([(at, span.init_ms)], (row - 0.35, 0.7), color=_COLD)
            ax.broken_barh(
                [(at + span.init_ms, max(span.duration_ms, 0.5))], (row - 0.35, 0.7), color=_WARM
            )
            if span.first_send is not None:
                ax.plot([(span.first_send - origin) * 1000], [row], "k|", markersize=14)
                if budget_ms is not None:  # when the first words were due
                    due = at + budget_ms
                    ax.plot([due, due], [row - 0.45, row + 0.45], color=_BUDGET, linestyle="--")
    if budget_ms is not None:
        ax.plot([], [], color=_BUDGET, linestyle="--", label=f"due: frame + {budget_ms:g} ms")
    ax.broken_barh([], (0, 0), color=_COLD, label="INIT (cold start)")
    ax.broken_barh([], (0, 0), color=_WARM, label="handler")
    ax.plot([], [], "k|", markersize=14, label="first words sent")
    ax.set_yticks(range(len(calls)), [c.connection_id[:16] for c in calls])
    ax.invert_yaxis()
    ax.set_xlabel("ms since the call's first frame arrived")
    ax.set_title("Per-call waterfalls: the calls that kept their caller waiting longest")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(
    report: Report, directory: str, *, budget_ms: float | None = None, waterfalls: int = 12
) -> list[str]:
    """Write the PNG files (module docstring) into ``directory``.

    Args:
        report: the parsed logs.
        directory: created if missing.
        budget_ms: the caller's wait the greeting and first token should stay under; drawn
            as a line when given.
        waterfalls: how many calls get a waterfall row.

    Returns:
        The files written.

    Raises:
        MissingExtraError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from warmline.errors import MissingExtraError

        raise MissingExtraError("matplotlib", "report") from exc

    os.makedirs(directory, exist_ok=True)
    written: list[str] = []

    path = os.path.join(directory, "durations.png")
    functions = sorted({i.function for i in report.invocations})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for n, name in enumerate(functions):
        real = [i for i in report.invocations if i.function == name and not i.warmup]
        inits = [i.init_ms or i.restore_ms or 0.0 for i in real if i.cold]
        warm = [i.duration_ms for i in real if not i.cold]
        ax.scatter([n - 0.15] * len(inits), inits, color=_COLD, s=14)
        ax.scatter([n + 0.15] * len(warm), warm, color=_WARM, s=14)
    ax.scatter([], [], color=_COLD, label="Init Duration (cold)")
    ax.scatter([], [], color=_WARM, label="Duration (warm)")
    ax.set_xticks(range(len(functions)), functions)
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.set_title("Cold starts vs warm invocations (warm-ups excluded)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    for name, file in (
        ("setup -> greeting", "greeting.png"),
        ("prompt -> first token", "first_token.png"),
    ):
        path = os.path.join(directory, file)
        _distribution(plt, report, name, budget_ms, path)
        written.append(path)
    if report.calls:
        path = os.path.join(directory, "waterfalls.png")
        _waterfalls(plt, report, waterfalls, budget_ms, path)
        written.append(path)
    return written
