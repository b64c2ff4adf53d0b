"""Bar charts as inline SVG, rendered on the server (no JS, no CDN)."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

COLOURS = ("#2f6fde", "#f29d38", "#3aa876")


def bars(labels: list[str], series: list[list[int]], names: list[str], height: int = 140) -> Markup:
    """Grouped bars: one group per label, one bar per series, with a legend and the maximum."""
    width = max(320, 28 * len(labels) + 40)
    top = max([1] + [v for s in series for v in s])
    plot_h = height - 34
    group_w = (width - 40) / max(1, len(labels))
    bar_w = max(2.0, (group_w - 4) / max(1, len(series)))
    # At most 8 axis labels (a label is ~30 units wide): every step-th day, the last one kept.
    step = max(1, -(-len(labels) // 8))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(" / ".join(names))}</title>',
        f'<text x="2" y="12" class="axis">{top}</text>',
        f'<line x1="34" y1="{plot_h + 16}" x2="{width}" y2="{plot_h + 16}" class="base"/>',
    ]
    for i, label in enumerate(labels):
        x0 = 36 + i * group_w
        for j, s in enumerate(series):
            v = s[i]
            h = plot_h * v / top
            parts.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{plot_h + 16 - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[j % 3]}"><title>{escape(names[j])} '
                f"{escape(label)}: {v}</title></rect>"
            )
        if (len(labels) - 1 - i) % step == 0:
            parts.append(
                f'<text x="{x0 + group_w / 2 - 2:.1f}" y="{height - 4}" class="axis" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    legend_x = 40
    for j, name in enumerate(names):
        parts.append(
            f'<rect x="{legend_x}" y="4" width="10" height="10" fill="{COLOURS[j % 3]}"/>'
            f'<text x="{legend_x + 14}" y="13" class="axis">{escape(name)}</text>'
        )
        legend_x += 24 + 12 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))
