"""Evaluation built in: golden sets, metrics with intervals, configurations, reports, tuning.

    from gleandb import evals
    golden = evals.generate(col, llm=evals.OpenAI(model="gpt-4o-mini"), n=200, example_queries=[...])
    # or: golden = evals.GoldenSet.load("golden.jsonl")
    report = evals.evaluate(col, golden, configs=["dense", "bm25", "hybrid",
                            evals.Config(mode="hybrid", fusion="weighted", weights=[1, 0.3])])
    print(report.table()); report.save_html("report.html")
    best = evals.tune(col, golden); col.modify(configuration={"retrieval": best.config})

See docs/evals.md.
"""

from gleandb.evals import metrics
from gleandb.evals.configs import Config
from gleandb.evals.evaluate import evaluate
from gleandb.evals.generate import GeneratedSet, GenerationError, GenerationReport, generate
from gleandb.evals.golden import GoldenQuery, GoldenSet, GoldenSetError
from gleandb.evals.llm import Anthropic, OpenAI
from gleandb.evals.report import Report
from gleandb.evals.tune import TuneResult, tune

__all__ = ["GoldenSet", "GoldenQuery", "GoldenSetError", "Config", "evaluate", "tune", "TuneResult", "Report",
           "metrics", "OpenAI", "Anthropic", "generate", "GeneratedSet", "GenerationReport", "GenerationError"]
