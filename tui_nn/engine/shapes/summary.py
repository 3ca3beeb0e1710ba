"""The torchinfo-style summary table of a shape report."""

from __future__ import annotations

from ..text import fmt_shape
from .report import ShapeReport


def summary_table(report: ShapeReport, *, details: bool = False) -> str:
    """A torchinfo-style table: layer, output shape, parameters, trainable; totals. With `details`, a conv or
    pool row is followed by a line with its output-size arithmetic ((in + 2p - d(k-1) - 1)/s + 1)."""
    rows = [("Layer", "Input", "Output", "Params", "Trainable")]
    notes: dict[int, str] = {}
    for ly in report.layers:
        name = ("  " * ly.depth) + f"{ly.path} {ly.type}"
        rows.append((name, fmt_shape(ly.input_shape), fmt_shape(ly.output_shape), f"{ly.params:,}",
                     f"{ly.trainable:,}"))
        if details and ly.detail:
            notes[len(rows) - 1] = ("  " * ly.depth) + "    " + ly.detail
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[i]) if i < 3 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if j in notes:
            lines.append(notes[j])
        if j == 0:
            lines.append("-" * len(lines[0]))
    lines.append("-" * len(lines[0]))
    lines.append(f"Total params: {report.total_params:,}")
    lines.append(f"Trainable params: {report.trainable_params:,}")
    lines.append(f"Non-trainable params: {report.total_params - report.trainable_params:,}")
    lines.append(f"Estimated memory: {report.memory.describe()}")
    return "\n".join(lines)


__all__ = ['summary_table']
