"""Flame graphs of an import tree: speedscope JSON and a self-contained SVG.

Both are written from the median import tree of :mod:`warmline.tools.coldstart`. Children
are laid out one after another under their parent, each as wide as its cumulative time,
so the picture reads like a timeline of the cold start.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from warmline.tools.coldstart import ImportNode

__all__ = ["to_speedscope", "to_svg"]

_ROW = 17
_WIDTH = 1200


def to_speedscope(roots: list[ImportNode], name: str) -> dict[str, Any]:
    """A speedscope "evented" profile (https://www.speedscope.app file format)."""
    frames: list[dict[str, str]] = []
    index: dict[str, int] = {}
    events: list[dict[str, Any]] = []

    def frame(module: str) -> int:
        if module not in index:
            index[module] = len(frames)
            frames.append({"name": module})
        return index[module]

    def emit(node: ImportNode, at: float) -> float:
        events.append({"type": "O", "frame": frame(node.name), "at": at})
        cursor = at
        for child in node.children:
            cursor = emit(child, cursor)
        end = max(at + node.cumulative_us, cursor)
        events.append({"type": "C", "frame": frame(node.name), "at": end})
        return end

    cursor = 0.0
    for root in roots:
        cursor = emit(root, cursor)
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "evented",
                "name": name,
                "unit": "microseconds",
                "startValue": 0,
                "endValue": cursor,
                "events": events,
            }
        ],
        "name": name,
        "exporter": "warmline coldstart",
    }


def _color(name: str) -> str:
    top = name.split(".")[0]
    h = sum(ord(c) * (i + 1) for i, c in enumerate(top)) % 60
    return f"hsl({10 + h}, 85%, {55 + (len(top) % 3) * 5}%)"


def to_svg(roots: list[ImportNode], title: str) -> str:
    """An SVG flame graph (icicle: the handler on top, its imports below)."""
    total = sum(r.cumulative_us for r in roots) or 1.0
    scale = (_WIDTH - 20) / total
    rects: list[str] = []
    depth_max = 0

    def draw(node: ImportNode, x: float, depth: int) -> float:
        nonlocal depth_max
        depth_max = max(depth_max, depth)
        width = node.cumulative_us * scale
        y = 40 + depth * _ROW
        label = f"{node.name} ({node.cumulative_us / 1000:.1f} ms)"
        tip = html.escape(f"{label}, self {node.self_us / 1000:.2f} ms")
        rects.append(
            f'<g><title>{tip}</title><rect x="{x:.1f}" y="{y}" width="{max(width, 0.5):.1f}" '
            f'height="{_ROW - 1}" fill="{_color(node.name)}" rx="2"/>'
        )
        if width > 40:
            chars = int(width / 7)
            text = html.escape(label if len(label) <= chars else label[: max(chars - 1, 1)] + "…")
            rects.append(f'<text x="{x + 3:.1f}" y="{y + 12}">{text}</text>')
        rects.append("</g>")
        cursor = x
        for child in node.children:
            cursor += draw(child, cursor, depth + 1)
        return width

    x = 10.0
    for root in roots:
        x += draw(root, x, 0)
    height = 40 + (depth_max + 1) * _ROW + 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="11">'
        f'<rect width="100%" height="100%" fill="#fafafa"/>'
        f'<text x="10" y="24" font-size="15">{html.escape(title)}</text>'
        + "".join(rects)
        + "</svg>"
    )


def write(
    roots: list[ImportNode], title: str, *, svg: Path | None, speedscope: Path | None
) -> None:
    """Write whichever of the two files is asked for."""
    if svg is not None:
        svg.write_text(to_svg(roots, title))
    if speedscope is not None:
        speedscope.write_text(json.dumps(to_speedscope(roots, title)))
