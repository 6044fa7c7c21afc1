"""Generative benchmarking: a golden set of queries written by a language model from the
collection's own documents.

The method follows Chroma's "Generative Benchmarking" report (2025), so the queries look
like real traffic instead of like the documents they came from:

1. **Filter.** Documents are sampled deterministically (``seed``) from the collection
   (within an optional ``where`` filter) and an LLM judge keeps only those a real user would
   plausibly search for, by user-written ``criteria``. The judge answers JSON
   (``{"keep": bool, "reason": str}``); every decision and reason is kept in the report and
   the kept ones in each query's provenance.
2. **Generate.** One query per kept document, steered by a handful of the user's real
   ``example_queries`` (style, length, vagueness, typos) rather than the document's wording;
   without examples a default style instruction stands in. The prompts are versioned
   (:data:`PROMPT_VERSION`).
3. **Assemble.** A query's relevant document is the one it came from (grade 3).
   Near-duplicates are dropped (same normalised text, or cosine similarity >=
   ``dedupe_threshold`` under the collection's embedding function). A share
   (``tune_share``) goes to ``split: "tune"``, the rest to ``"test"``, by ``seed``.

Cost is bounded and visible: generation stops once ``n`` queries are kept, the judge sees
at most ``judge_multiple * n`` documents, and calls, tokens and cost (in total and per
query) come back on ``golden.stats`` (a :class:`GenerationReport`). An answer that is not
the JSON asked for is retried once with a repair prompt, then counted and skipped, never
fatal. Records follow the golden-set schema (docs/evals.md).
"""

from __future__ import annotations

import json
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gleandb.embeddings.progress import progress_bar
from gleandb.errors import InvalidArgumentError
from gleandb.evals.golden import GoldenSet
from gleandb.retrieval.llm import ChatAuthError, ChatError, Usage

PROMPT_VERSION = "gen-v1"

DEFAULT_CRITERIA = (
    "Relevance: the document is about something a real user of this collection would plausibly "
    "search for (not navigation, a table of contents, licence or legal boilerplate, a changelog "
    "line, or text that only makes sense next to its neighbours).",
    "Completeness: the document holds enough self-contained, specific information to answer a "
    "concrete question on its own.",
)

DEFAULT_STYLE = (
    "Write it the way people type into a search box: usually 3 to 10 words, often not a full "
    "sentence, lower case is fine, using the words a user would know rather than the document's "
    "exact phrasing, and naming no identifiers the user could not know."
)

DEFAULT_DEDUPE_THRESHOLD = 0.95
DEFAULT_JUDGE_MULTIPLE = 3
MAX_EXAMPLES_SHOWN = 10
MAX_QUERY_CHARS = 500
# consecutive failed calls (after the client's own retries) with no success: the endpoint is down
MAX_FAILED_CALLS_AT_START = 5

JUDGE_SYSTEM = (
    "You select documents for a search benchmark. Read one document and decide whether it meets "
    "every criterion you are given. Answer with one JSON object and nothing else: "
    '{"keep": true or false, "reason": "<one short sentence>"}.'
)

JUDGE_USER = """Criteria (keep the document only if it meets all of them):
{criteria}
{context}
<document id="{doc_id}">
{document}
</document>

Answer with only the JSON object {{"keep": true or false, "reason": "..."}}."""

QUERY_SYSTEM = (
    "You write realistic search queries for a search benchmark: the query a real user would type "
    "when the given document is exactly what they need. Answer with one JSON object and nothing "
    'else: {"query": "<the query>"}.'
)

QUERY_USER = """{context}<document id="{doc_id}">
{document}
</document>

{style}

Write one query that a real user might type and that this document answers.
Answer with only the JSON object {{"query": "..."}}."""

EXAMPLES_BLOCK = """Here are queries real users have typed into this search. Match their style: length, wording, \
vagueness, capitalisation and typos. Do not copy them, and do not copy the document's wording where a user \
would not know it:
<example-queries>
{examples}
</example-queries>"""

REPAIR = ("That answer could not be used: {problem}. Answer again with only the JSON object "
          "{shape} and nothing else.")


class GenerationError(RuntimeError):
    """The run could not go on (the endpoint refuses every call, a bad key)."""


@dataclass
class GenerationReport:
    """What a generation run did and what it cost (``golden.stats``)."""

    model: str
    prompt_version: str
    seed: int
    collection: str
    collection_version: int | None
    n_requested: int
    sampled: int = 0            # documents drawn from the collection (the judge's budget)
    judged: int = 0             # documents the judge answered about
    kept: int = 0               # documents the judge kept
    rejected: int = 0           # documents the judge rejected
    skipped_empty: int = 0      # sampled records without a document
    generated: int = 0          # usable queries the generator wrote
    duplicates: int = 0         # of those, dropped as near-duplicates
    queries: int = 0            # queries in the golden set
    tune: int = 0
    test: int = 0
    judge_garbage: int = 0      # judge answers unusable even after the repair prompt
    query_garbage: int = 0      # generator answers unusable even after the repair prompt
    repairs: int = 0            # repair prompts sent
    failed_calls: int = 0       # calls that failed after the client's retries (document skipped)
    dedupe: str = "text"        # "text" or "text+embedding"
    dedupe_threshold: float = DEFAULT_DEDUPE_THRESHOLD
    criteria: list[str] = field(default_factory=list)
    example_queries: int = 0
    usage: Usage = field(default_factory=Usage)
    decisions: list[dict] = field(default_factory=list)  # {"id", "keep", "reason"} per judged document
    errors: list[str] = field(default_factory=list)      # the first few error messages
    elapsed_s: float = 0.0

    def per_query(self) -> dict:
        """Calls, tokens and cost divided by the number of queries in the golden set."""
        u, q = self.usage, self.queries
        if not q:
            return {"calls": None, "input_tokens": None, "output_tokens": None, "cost": None}
        return {"calls": u.calls / q, "input_tokens": u.input_tokens / q, "output_tokens": u.output_tokens / q,
                "cost": None if u.cost is None else u.cost / q}

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "usage"}
        out["usage"] = self.usage.to_dict()
        out["per_query"] = self.per_query()
        return out

    def summary(self) -> str:
        """A few lines for a terminal."""
        u, pq = self.usage, self.per_query()
        cost = "cost unknown (no price for this model)" if u.cost is None else f"${u.cost:.4f}"
        lines = [
            f"{self.queries} queries ({self.tune} tune, {self.test} test) from {self.collection!r} "
            f"version {self.collection_version}, model {self.model}, prompt {self.prompt_version}, seed {self.seed}",
            f"judge: {self.judged} documents judged, {self.kept} kept, {self.rejected} rejected "
            f"(budget {self.sampled} documents); {self.generated} queries written, {self.duplicates} near-duplicates removed",
            f"cost: {u.calls} calls, {u.input_tokens} input + {u.output_tokens} output tokens, {cost}",
        ]
        if self.queries:
            per = f"per query: {pq['calls']:.2f} calls, {pq['input_tokens']:.0f} input + {pq['output_tokens']:.0f} output tokens"
            if pq["cost"] is not None:
                per += f", ${pq['cost']:.5f}"
            lines.append(per)
        bad = self.judge_garbage + self.query_garbage
        if bad or self.failed_calls or self.repairs:
            lines.append(f"unusable answers: {self.judge_garbage} judge, {self.query_garbage} query "
                         f"({self.repairs} repair prompts); failed calls: {self.failed_calls}")
        if self.queries < self.n_requested:
            lines.append(f"note: {self.n_requested} queries were requested; the collection (or the judge's "
                         f"budget of {self.sampled} documents) gave {self.queries}")
        return "\n".join(lines)


class GeneratedSet(GoldenSet):
    """The generated golden set (a :class:`~gleandb.evals.golden.GoldenSet`), with ``stats``:
    the :class:`GenerationReport` of the run (calls, tokens, cost, judge decisions)."""

    stats: GenerationReport


def _golden(records: list[dict], report: GenerationReport) -> GeneratedSet:
    golden = GeneratedSet(GoldenSet.from_records(records).queries)
    golden.stats = report
    return golden


# --------------------------------------------------------------------------- answers


def _json_object(text: str) -> dict | None:
    """The JSON object in a model's answer (bare, fenced, or with words around it)."""
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    for candidate in (text, text[text.find("{"): text.rfind("}") + 1] if "{" in text else ""):
        if not candidate:
            continue
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _parse_judge(text: str) -> tuple[dict | None, str]:
    obj = _json_object(text)
    if obj is None:
        return None, "it is not a JSON object"
    keep = obj.get("keep")
    if isinstance(keep, str) and keep.strip().lower() in ("true", "false", "yes", "no"):
        keep = keep.strip().lower() in ("true", "yes")
    if not isinstance(keep, bool):
        return None, f'"keep" must be true or false, got {obj.get("keep")!r}'
    reason = obj.get("reason", "")
    return {"keep": keep, "reason": reason if isinstance(reason, str) else json.dumps(reason)}, ""


def _parse_query(text: str, document: str) -> tuple[str | None, str]:
    obj = _json_object(text)
    if obj is None:
        return None, "it is not a JSON object"
    query = obj.get("query")
    if not isinstance(query, str):
        return None, f'"query" must be a string, got {query!r}'
    query = " ".join(query.split()).strip("\"'` ")
    if not query:
        return None, '"query" is empty'
    if len(query) > MAX_QUERY_CHARS:
        return None, f'"query" is {len(query)} characters long; a search query is short'
    if _normalise(query) == _normalise(document):
        return None, '"query" copies the whole document'
    return query, ""


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


# --------------------------------------------------------------------------- the run


@dataclass
class _Outcome:
    """What happened to one sampled document (computed in a worker thread)."""

    id: str
    keep: bool | None = None
    reason: str = ""
    query: str | None = None
    judge_garbage: bool = False
    query_garbage: bool = False
    repairs: int = 0
    errors: list[str] = field(default_factory=list)
    successes: int = 0


class _Generator:
    def __init__(self, llm: Any, criteria: list[str], examples: list[str], context: str | None,
                 seed: int, max_doc_chars: int, usage: Usage) -> None:
        self.llm = llm
        self.criteria = criteria
        self.examples = examples
        self.context = context
        self.seed = seed
        self.max_doc_chars = max_doc_chars
        self.usage = usage

    def _ask(self, out: _Outcome, system: str, prompt: str, parse, shape: str, max_tokens: int):
        """One question, plus one repair turn when the answer is unusable. ``(value, ok)``;
        raises ChatError only for auth failures (the run stops)."""
        messages = [{"role": "user", "content": prompt}]
        for attempt in range(2):
            try:
                reply = self.llm.complete(system, messages, usage=self.usage, max_tokens=max_tokens)
            except ChatAuthError:
                raise
            except ChatError as exc:
                out.errors.append(str(exc))
                return None, False
            out.successes += 1
            value, problem = parse(reply.text)
            if value is not None:
                return value, True
            if attempt == 0:
                out.repairs += 1
                messages = messages + [{"role": "assistant", "content": reply.text},
                                       {"role": "user", "content": REPAIR.format(problem=problem, shape=shape)}]
        return None, True

    def _doc(self, document: str) -> str:
        if len(document) <= self.max_doc_chars:
            return document
        return document[: self.max_doc_chars] + " [...]"

    def _context(self) -> str:
        return f"\nWhat this collection is and who searches it: {self.context}\n" if self.context else ""

    def judge_prompt(self, doc_id: str, document: str) -> str:
        criteria = "\n".join(f"{i}. {c}" for i, c in enumerate(self.criteria, 1))
        return JUDGE_USER.format(criteria=criteria, context=self._context(), doc_id=doc_id,
                                 document=self._doc(document))

    def query_prompt(self, doc_id: str, document: str, index: int) -> str:
        if self.examples:
            shown = self.examples
            if len(shown) > MAX_EXAMPLES_SHOWN:  # a different handful per document, by seed
                shown = random.Random(f"{self.seed}:examples:{index}").sample(shown, MAX_EXAMPLES_SHOWN)
            style = EXAMPLES_BLOCK.format(examples="\n".join(shown))
        else:
            style = DEFAULT_STYLE
        context = self._context().lstrip("\n") + ("\n" if self.context else "")
        return QUERY_USER.format(context=context, doc_id=doc_id, document=self._doc(document), style=style)

    def process(self, index: int, doc_id: str, document: str) -> _Outcome:
        out = _Outcome(doc_id)
        verdict, answered = self._ask(out, JUDGE_SYSTEM, self.judge_prompt(doc_id, document), _parse_judge,
                                      '{"keep": true or false, "reason": "..."}', 200)
        if verdict is None:
            out.judge_garbage = answered
            return out
        out.keep, out.reason = verdict["keep"], verdict["reason"]
        if not out.keep:
            return out
        query, answered = self._ask(out, QUERY_SYSTEM, self.query_prompt(doc_id, document, index),
                                    lambda text: _parse_query(text, document), '{"query": "..."}', 200)
        if query is None:
            out.query_garbage = answered
        out.query = query
        return out


def _check_args(n, tune_share, seed, criteria, example_queries, dedupe_threshold, judge_multiple,
                max_doc_chars, concurrency) -> tuple[list[str], list[str]]:
    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool)

    if not is_int(n) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (the number of queries wanted), got {n!r}")
    if not isinstance(tune_share, (int, float)) or isinstance(tune_share, bool) or not 0 <= tune_share < 1:
        raise ValueError(f"tune_share must be a number in [0, 1), got {tune_share!r}")
    if not is_int(seed):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not isinstance(dedupe_threshold, (int, float)) or isinstance(dedupe_threshold, bool) \
            or not 0 < dedupe_threshold <= 1:
        raise ValueError(f"dedupe_threshold must be a number in (0, 1], got {dedupe_threshold!r}")
    if not is_int(judge_multiple) or judge_multiple < 1:
        raise ValueError(f"judge_multiple must be an integer >= 1, got {judge_multiple!r}")
    if not is_int(max_doc_chars) or max_doc_chars < 100:
        raise ValueError(f"max_doc_chars must be an integer >= 100, got {max_doc_chars!r}")
    if concurrency is not None and (not is_int(concurrency) or concurrency < 1):
        raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")

    def text_list(name, value):
        if value is None:
            return []
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list of strings, got {value!r}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(f"{name}[{i}] must be a string, got {item!r}")
            if item.strip():
                out.append(" ".join(item.split()))
        return out

    crit = text_list("criteria", criteria) if criteria is not None else list(DEFAULT_CRITERIA)
    if not crit:
        raise ValueError(f"criteria must name at least one criterion, got {criteria!r}")
    return crit, text_list("example_queries", example_queries)


def _sample(col: Any, where: dict | None, k: int, seed: int) -> list[str]:
    """``k`` ids drawn without replacement, the same ones for the same seed and contents."""
    ids = sorted(col.get(where=where, include=[])["ids"])
    random.Random(seed).shuffle(ids)
    return ids[:k]


def _collection_version(col: Any) -> int | None:
    try:
        version = col.get_model().get("version")
    except Exception:
        version = None
    return version if isinstance(version, int) else None


class _Deduper:
    """Drops a query whose normalised text was seen, or whose embedding is within
    ``threshold`` cosine of a kept one (when an embedding function is given)."""

    def __init__(self, embedding_function: Any, threshold: float) -> None:
        self.ef = embedding_function
        self.threshold = threshold
        self.texts: set[str] = set()
        self.vectors: list[np.ndarray] = []

    def embed(self, queries: list[str]) -> list[np.ndarray | None]:
        if self.ef is None or not queries:
            return [None] * len(queries)
        mat = np.asarray(self.ef(list(queries)), dtype=np.float32).reshape(len(queries), -1)
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        return list(mat / np.where(norms == 0, 1, norms))

    def is_new(self, query: str, vector: np.ndarray | None) -> bool:
        key = _normalise(query)
        if key in self.texts:
            return False
        if vector is not None and self.vectors:
            if float(np.max(np.stack(self.vectors) @ vector)) >= self.threshold:
                return False
        self.texts.add(key)
        if vector is not None:
            self.vectors.append(vector)
        return True


def generate(
    collection: Any,
    llm: Any,
    n: int = 100,
    *,
    example_queries: Sequence[str] | None = None,
    criteria: Sequence[str] | None = None,
    context: str | None = None,
    where: dict | None = None,
    seed: int = 0,
    tune_share: float = 0.2,
    dedupe_threshold: float = DEFAULT_DEDUPE_THRESHOLD,
    judge_multiple: int = DEFAULT_JUDGE_MULTIPLE,
    max_doc_chars: int = 4000,
    concurrency: int | None = None,
    progress: bool | None = False,
    output: str | Path | None = None,
) -> GeneratedSet:
    """Write up to ``n`` golden queries from ``collection``'s documents with ``llm``.

    ``llm`` is a chat client from :mod:`gleandb.evals.llm` (``OpenAI(model=...)``,
    ``Anthropic(model=...)``). ``example_queries``: real user queries that set the style;
    ``criteria``: what makes a document worth a query (default :data:`DEFAULT_CRITERIA`);
    ``context``: one sentence on what the collection is and who searches it. Returns the
    records (golden-set dicts) with ``.stats`` (a :class:`GenerationReport`); ``output``
    also writes them as JSONL. Raises ``ValueError`` for bad arguments or an empty
    collection, :class:`GenerationError` when the endpoint refuses every call.
    """
    crit, examples = _check_args(n, tune_share, seed, criteria, example_queries, dedupe_threshold,
                                 judge_multiple, max_doc_chars, concurrency)
    if not callable(getattr(llm, "complete", None)):
        raise ValueError(f"llm must be a chat client (gleandb.evals.OpenAI or Anthropic), got {llm!r}")
    if context is not None and not isinstance(context, str):
        raise ValueError(f"context must be a string, got {context!r}")
    t0 = time.perf_counter()
    model = str(getattr(llm, "model", type(llm).__name__))
    report = GenerationReport(model=model, prompt_version=PROMPT_VERSION, seed=seed, collection=collection.name,
                              collection_version=_collection_version(collection), n_requested=n,
                              dedupe_threshold=float(dedupe_threshold), criteria=crit,
                              example_queries=len(examples))
    if where is not None and not isinstance(where, dict):
        raise ValueError(f"where must be a metadata filter (a dict), got {where!r}")
    try:
        ids = _sample(collection, where, judge_multiple * n, seed)
    except InvalidArgumentError as exc:
        if where is None:
            raise
        raise ValueError(f"where {where!r} is not a valid filter: {exc}") from None
    if not ids:
        scope = f" matching where={where!r}" if where else ""
        raise ValueError(f"collection {collection.name!r} has no records{scope} to generate queries from")
    report.sampled = len(ids)

    ef = getattr(collection, "embedding_function", None)
    deduper = _Deduper(ef, dedupe_threshold)
    report.dedupe = "text+embedding" if ef is not None else "text"
    gen = _Generator(llm, crit, examples, context, seed, max_doc_chars, report.usage)
    workers = concurrency or max(1, min(8, int(getattr(llm, "max_concurrency", 4))))
    kept: list[tuple[str, str, str]] = []  # (query, source id, judge reason), in sample order
    successes, last_error = 0, ""
    bar = progress_bar(n, "generating queries", unit="query", enabled=progress)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pos = 0
            while pos < len(ids) and len(kept) < n:
                # never more documents in flight than queries still wanted: n bounds the calls
                window = ids[pos: pos + min(workers, n - len(kept))]
                pos += len(window)
                got = collection.get(ids=window, include=["documents"])
                docs = dict(zip(got["ids"], got["documents"]))
                todo = [(pos - len(window) + i, i_d) for i, i_d in enumerate(window)
                        if isinstance(docs.get(i_d), str) and docs[i_d].strip()]
                report.skipped_empty += len(window) - len(todo)
                outcomes = list(pool.map(lambda t: gen.process(t[0], t[1], docs[t[1]]), todo))
                queries = [o.query for o in outcomes if o.query is not None]
                try:
                    vectors = iter(deduper.embed(queries))
                except Exception as exc:  # the embedding function failed: text dedupe only, said so
                    deduper.ef = None
                    report.dedupe = "text"
                    report.errors.append(f"embedding queries for dedupe failed, text dedupe only: {exc}")
                    vectors = iter([None] * len(queries))
                for o in outcomes:
                    successes += o.successes
                    report.repairs += o.repairs
                    report.failed_calls += len(o.errors)
                    report.errors.extend(o.errors[: max(0, 10 - len(report.errors))])
                    last_error = o.errors[-1] if o.errors else last_error
                    report.judge_garbage += o.judge_garbage
                    report.query_garbage += o.query_garbage
                    if o.keep is not None:
                        report.judged += 1
                        report.kept += o.keep
                        report.rejected += not o.keep
                        report.decisions.append({"id": o.id, "keep": o.keep, "reason": o.reason})
                    if o.query is None:
                        continue
                    report.generated += 1
                    vec = next(vectors)
                    if not deduper.is_new(o.query, vec):
                        report.duplicates += 1
                        continue
                    kept.append((o.query, o.id, o.reason))
                    bar.update(1)
                if successes == 0 and report.failed_calls >= MAX_FAILED_CALLS_AT_START:
                    raise GenerationError(f"{report.failed_calls} calls to {model} failed and none succeeded; "
                                          f"last error: {last_error}")
    finally:
        bar.close()

    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    order = list(range(len(kept)))
    random.Random(f"{seed}:split").shuffle(order)
    tune = set(order[: round(tune_share * len(kept))])
    records = []
    for i, (query, source_id, reason) in enumerate(kept):
        records.append({
            "query_id": f"q-{i + 1:06d}",
            "query": query,
            "relevant": {source_id: 3},
            "split": "tune" if i in tune else "test",
            "source": "generated",
            "status": "unreviewed",
            "provenance": {
                "model": model, "provider": getattr(llm, "provider", None), "prompt_version": PROMPT_VERSION,
                "seed": seed, "collection": collection.name, "collection_version": report.collection_version,
                "source_id": source_id, "judge_reason": reason, "created_at": created,
            },
        })
    report.queries = len(records)
    report.tune = len(tune)
    report.test = len(records) - len(tune)
    report.elapsed_s = time.perf_counter() - t0
    golden = _golden(records, report)
    if output is not None:
        golden.save(output)
    return golden
