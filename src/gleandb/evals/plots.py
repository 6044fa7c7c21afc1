"""Plots of an evaluation report, drawn with matplotlib (Agg backend) and returned as inline SVG.

Separate from ``report.py`` so the table and JSON need no plotting library: matplotlib is
the ``evals`` extra, imported only when an HTML report is written.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gleandb.evals.report import Report


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("the HTML report draws its plots with matplotlib: pip install 'gleandb[evals]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.find("<svg"):]  # drop the XML prolog and doctype: the SVG goes inline


def recall_curves_svg(report: "Report") -> str:
    """Mean recall@k against k, one line per configuration."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ks = report.curve_ks
    for r in report.results:
        curve = np.asarray(r.recall_curve).mean(axis=0) if r.recall_curve else np.zeros(len(ks))
        ax.plot(ks, curve, marker="o", markersize=3, label=r.name)
    ax.set_xscale("log")
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel("k")
    ax.set_ylabel("mean recall@k")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _svg(fig)


def wins_losses_svg(report: "Report", a: str, b: str) -> str:
    """Per-query nDCG difference a - b, sorted: bars above zero are queries a wins."""
    plt = _pyplot()
    wl = report.wins_losses(a, b)
    d = np.sort(np.asarray(wl["diff"]))[::-1]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.set_title(f"{a} wins {wl['wins']}, loses {wl['losses']}, ties {wl['ties']} of {len(d)} queries", fontsize=9)
    colors = np.where(d > 0, "#2a9d8f", np.where(d < 0, "#e76f51", "#999999"))
    ax.bar(np.arange(len(d)), d, color=colors, width=1.0)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("queries (sorted by difference)")
    ax.set_ylabel(f"nDCG@{report.k}: {a} − {b}")
    ax.set_xlim(-0.5, len(d) - 0.5)
    ax.set_ylim(-1.02, 1.02)
    ax.grid(True, axis="y", alpha=0.3)
    return _svg(fig)
