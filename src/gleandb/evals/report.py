"""The result of ``evaluate``: per-configuration scores with intervals, as a table, JSON or HTML.

The table has one row per configuration: nDCG@k with its 95 % bootstrap interval,
recall@k, precision@k, MRR@k, milliseconds per query, language-model cost per query, and
the p-value of a paired test against the best configuration (by mean nDCG@k): a small p
(< 0.05) says the gap to the best is unlikely to be noise on this many queries.

The HTML report is one self-contained file (plots embedded as inline SVG, no external
URLs): the table, recall@k curves, and per-query wins and losses between the two best
configurations.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gleandb.evals import metrics


@dataclass
class ConfigResult:
    """One configuration's per-query outcome, in the report's query order."""

    name: str
    description: dict
    per_query: dict[str, list[float]]     # metric -> one value per query
    recall_curve: list[list[float]]       # per query: recall at each of Report.curve_ks
    latency_ms: list[float]
    llm: list[dict]
    errors: list[str | None]
    degraded: list[bool]
    rankings: list[list[str]]             # top k ids per query
    wall_s: float = 0.0

    @property
    def failed(self) -> int:
        return sum(e is not None for e in self.errors)


@dataclass
class Report:
    k: int
    split: str | None
    query_ids: list[str]
    queries: list[str]
    results: list[ConfigResult]
    curve_ks: list[int]
    unscorable: list[str] = field(default_factory=list)
    golden_summary: dict = field(default_factory=dict)
    n_boot: int = 2000
    seed: int = 0
    collection: str | None = None

    def __post_init__(self) -> None:
        self._summary: list[dict] | None = None

    # -------------------------------------------------------------- numbers

    def result(self, name: str) -> ConfigResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no config named {name!r} in this report; it has {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.results]

    @property
    def best(self) -> str:
        """The config with the highest mean nDCG@k (the first one listed on a tie)."""
        means = [float(np.mean(r.per_query["ndcg"])) for r in self.results]
        return self.results[int(np.argmax(means))].name

    def summary(self) -> list[dict]:
        """One dict per config: each metric's mean/low/high, latency, LLM use, p vs best."""
        if self._summary is not None:
            return self._summary
        best = self.result(self.best)
        rows = []
        for r in self.results:
            row: dict[str, Any] = {"config": r.name, "description": r.description, "queries": len(self.query_ids)}
            for m in metrics.METRICS:
                mean, lo, hi = metrics.bootstrap_ci(r.per_query[m], self.n_boot, seed=self.seed)
                row[m] = {"mean": mean, "low": lo, "high": hi}
            n = len(r.latency_ms)
            row["ms_per_query"] = float(np.mean(r.latency_ms)) if n else 0.0
            calls = sum(u["calls"] for u in r.llm)
            costs = [u["cost"] for u in r.llm if u["cost"] is not None]
            row["llm"] = {"calls_per_query": calls / n if n else 0.0,
                          "input_tokens_per_query": sum(u["input_tokens"] for u in r.llm) / n if n else 0.0,
                          "output_tokens_per_query": sum(u["output_tokens"] for u in r.llm) / n if n else 0.0,
                          "cost_per_query": (sum(costs) / n) if costs else None,
                          "failed_calls": sum(u["failed_calls"] for u in r.llm)}
            row["failed_queries"] = r.failed
            row["degraded_queries"] = sum(r.degraded)
            row["p_vs_best"] = None if r is best else metrics.paired_test(
                r.per_query["ndcg"], best.per_query["ndcg"], seed=self.seed)
            rows.append(row)
        self._summary = rows
        return rows

    def wins_losses(self, a: str, b: str) -> dict:
        """Per query nDCG@k of ``a`` minus ``b``: wins (a better), losses, ties."""
        d = np.asarray(self.result(a).per_query["ndcg"]) - np.asarray(self.result(b).per_query["ndcg"])
        return {"a": a, "b": b, "wins": int((d > 1e-12).sum()), "losses": int((d < -1e-12).sum()),
                "ties": int((np.abs(d) <= 1e-12).sum()), "diff": d.tolist()}

    def top_two(self) -> tuple[str, str] | None:
        if len(self.results) < 2:
            return None
        order = sorted(self.summary(), key=lambda row: -row["ndcg"]["mean"])
        return order[0]["config"], order[1]["config"]

    # ---------------------------------------------------------------- table

    def table(self) -> str:
        """The terminal table (plain text, fixed-width columns)."""
        k = self.k
        head = ["config", f"nDCG@{k} [95% CI]", f"recall@{k}", f"P@{k}", f"MRR@{k}", "ms/q", "LLM $/q",
                "p vs best"]
        best = self.best
        lines = []
        for row in self.summary():
            nd = row["ndcg"]
            cost = row["llm"]["cost_per_query"]
            calls = row["llm"]["calls_per_query"]
            cost_s = f"{cost:.5f}" if cost is not None else (f"{calls:.1f} calls" if calls else "-")
            p = row["p_vs_best"]
            p_s = "best" if row["config"] == best else (f"{p:.3f}" if p >= 0.001 else "<0.001")
            note = ""
            if row["failed_queries"]:
                note = f"  ({row['failed_queries']} queries failed)"
            lines.append([row["config"], f"{nd['mean']:.3f} [{nd['low']:.3f}, {nd['high']:.3f}]",
                          f"{row['recall']['mean']:.3f}", f"{row['precision']['mean']:.3f}",
                          f"{row['mrr']['mean']:.3f}", f"{row['ms_per_query']:.1f}", cost_s, p_s + note])
        widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(head)]
        fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                      for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        out = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in lines]
        split = f" ({self.split} split)" if self.split else ""
        foot = f"{len(self.query_ids)} queries{split}"
        if self.unscorable:
            foot += f"; {len(self.unscorable)} unscorable skipped (rejected or no id graded >= 1)"
        foot += f"; p: paired permutation test on nDCG@{k} vs {best}"
        return "\n".join(out + [foot])

    def __str__(self) -> str:
        return self.table()

    # ----------------------------------------------------------------- JSON

    def to_json(self) -> dict:
        """Everything: the summary, and per config and query the scores, latency, LLM use, errors."""
        per_config = {}
        for r in self.results:
            per_config[r.name] = {
                "description": r.description, "wall_s": r.wall_s,
                "queries": [
                    {"query_id": qid, **{m: r.per_query[m][i] for m in metrics.METRICS},
                     "recall_curve": r.recall_curve[i], "latency_ms": r.latency_ms[i], "llm": r.llm[i],
                     "error": r.errors[i], "degraded": r.degraded[i], "top_ids": r.rankings[i]}
                    for i, qid in enumerate(self.query_ids)],
            }
        return {"collection": self.collection, "k": self.k, "split": self.split, "best": self.best,
                "queries": len(self.query_ids), "unscorable": self.unscorable, "golden": self.golden_summary,
                "curve_ks": self.curve_ks, "n_boot": self.n_boot, "seed": self.seed,
                "summary": self.summary(), "per_config": per_config}

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1, default=float), encoding="utf-8")

    # ----------------------------------------------------------------- HTML

    def save_html(self, path: str | Path) -> None:
        """One self-contained HTML file: table, recall@k curves, wins/losses (inline SVG)."""
        Path(path).write_text(self.to_html(), encoding="utf-8")

    def to_html(self) -> str:
        from gleandb.evals import plots

        e = html.escape
        rows = []
        for row in self.summary():
            cells = [e(row["config"])]
            nd = row["ndcg"]
            cells.append(f"{nd['mean']:.3f} <small>[{nd['low']:.3f}, {nd['high']:.3f}]</small>")
            for m in ("recall", "precision", "mrr"):
                x = row[m]
                cells.append(f"{x['mean']:.3f} <small>[{x['low']:.3f}, {x['high']:.3f}]</small>")
            cells.append(f"{row['ms_per_query']:.1f}")
            cost = row["llm"]["cost_per_query"]
            cells.append(f"{row['llm']['calls_per_query']:.1f} / " + (f"${cost:.5f}" if cost is not None else "-"))
            p = row["p_vs_best"]
            cells.append("best" if p is None else (f"{p:.3f}" if p >= 0.001 else "&lt;0.001"))
            cells.append(str(row["failed_queries"]))
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        k = self.k
        head = ["config", f"nDCG@{k}", f"recall@{k}", f"precision@{k}", f"MRR@{k}", "ms/query",
                "LLM calls / cost per query", "p vs best", "failed"]
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>gleandb evaluation: {e(str(self.collection))}</title>",
            "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}small{color:#666}figure{margin:1.5em 0}</style>",
            "</head><body>",
            f"<h1>Retrieval evaluation: {e(str(self.collection))}</h1>",
            f"<p>{len(self.query_ids)} scored queries" + (f" ({e(self.split)} split)" if self.split else "")
            + (f", {len(self.unscorable)} unscorable skipped" if self.unscorable else "")
            + f". Intervals: 95 % bootstrap ({self.n_boot} resamples). p: paired permutation test on nDCG@{k} "
            f"against the best configuration, <b>{e(self.best)}</b>.</p>",
            "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>", *rows, "</table>",
            "<h2>Recall@k</h2>", f"<figure>{plots.recall_curves_svg(self)}</figure>",
        ]
        top = self.top_two()
        if top:
            wl = self.wins_losses(*top)
            parts += [f"<h2>Per query: {e(top[0])} vs {e(top[1])}</h2>",
                      f"<p>{e(top[0])} wins on {wl['wins']} queries, loses on {wl['losses']}, "
                      f"ties on {wl['ties']} (nDCG@{k}).</p>",
                      f"<figure>{plots.wins_losses_svg(self, *top)}</figure>"]
            parts.append(self._biggest_differences_html(wl))
        parts.append("</body></html>")
        return "\n".join(parts)

    def _biggest_differences_html(self, wl: dict, n: int = 10) -> str:
        e = html.escape
        d = np.asarray(wl["diff"])
        idx = [i for i in np.argsort(d) if abs(d[i]) > 1e-12]
        picks = idx[:n // 2] + idx[-(n // 2):] if len(idx) > n else idx
        if not picks:
            return ""
        rows = "".join(f"<tr><td>{e(self.query_ids[i])}</td><td style='text-align:left'>{e(self.queries[i][:120])}"
                       f"</td><td>{d[i]:+.3f}</td></tr>" for i in sorted(set(picks), key=lambda i: d[i]))
        return (f"<h3>Largest differences (nDCG@{self.k}, {e(wl['a'])} minus {e(wl['b'])})</h3>"
                f"<table><tr><th>query_id</th><th>query</th><th>difference</th></tr>{rows}</table>")
