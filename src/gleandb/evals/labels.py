"""Relevance labels from people, stored durably in the store: the labeling page's state.

A ``LabelStore`` belongs to one collection and is keyed by the collection's id (a
rename keeps its labels). It is an append-only event log, framed like the WAL
(``u32 length | u32 crc32 | payload``, msgpack), under ``labels/<collection id>/``
through the storage interface, so it works on a directory (``PersistentClient``) and
in memory (``EphemeralClient``) alike. Each append is one batch of events, synced
before it returns: a label is acknowledged only once it survives kill -9. Each open
starts a new log file, so a torn tail (a crash mid-append) stays at the end of its
file, where replay detects it by length or checksum and drops it, never half-applied.

Events carry a sequence number; replay sorts by it and ignores repeats, which makes
compacting many small files into one (on open) safe against a crash half-way.

Two kinds of event:
- ``label``: (query, doc, labeler) -> grade 0..3. Several labelers' grades on one pair
  are all kept, keyed by labeler; a labeler's later grade replaces their earlier one.
- ``query``: import (a golden-set line), add (a new query), accept, edit (new text; the
  first text is kept as ``original_query``), reject.

Export builds a golden set (docs/evals-label.md): a doc's grade is the **mean** of its
labelers' grades rounded half up (3 and 0 -> 2; 1 and 2 -> 2; 1, 1, 2 -> 1).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import msgpack

from gleandb.api.collection import client_of
from gleandb.evals.golden import GoldenQuery, GoldenSet, GoldenSetError
from gleandb.storage.base import LogWriter, Storage
from gleandb.storage.framing import append_record, frame, unframe

_MAX_RECORD = 1 << 28
GRADES = (0, 1, 2, 3)
QUERY_ACTIONS = ("import", "add", "accept", "edit", "reject")
# more log files than this on open are rewritten into one
COMPACT_FILES = 16
# golden-set keys that LabelStore models itself; any other key of an imported line is kept
_GOLDEN_KEYS = ("query_id", "query", "relevant", "split", "source", "status", "provenance")


class LabelError(ValueError):
    """Bad input to the label store (unknown query, bad grade...): nothing was written."""


# ----------------------------------------------------------------------- framing


def _encode(events: list[dict]) -> bytes:
    return frame(msgpack.packb(events, use_bin_type=True))


def _iter_batches(data: bytes) -> Iterator[list[dict]]:
    """Good batches of one log file, in order; stops at the first torn one."""
    for body in unframe(data, _MAX_RECORD):
        yield msgpack.unpackb(body, raw=False, strict_map_key=False)


# ------------------------------------------------------------------------- state


@dataclass
class LabeledQuery:
    """One query as the labeling page sees it."""

    query_id: str
    query: str
    status: str = "unreviewed"
    source: str = "human"
    split: str = "test"
    relevant: dict[str, int] = field(default_factory=dict)  # grades from the imported file
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # unknown golden keys, kept on export
    original_query: str | None = None
    history: list[dict] = field(default_factory=list)  # (action, labeler, time) of each change


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _check_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LabelError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > 10_000:
        raise LabelError(f"{name} is {len(value)} characters long; at most 10000")
    return value.strip() if name == "labeler" else value


class LabelStore:
    """Labels and query edits of one collection, replayed on open; thread-safe."""

    def __init__(self, storage: Storage, collection_id: str):
        self.storage = storage
        self.collection_id = str(collection_id)
        self.prefix = f"labels/{self.collection_id}/"
        self._lock = threading.Lock()
        self._writer: LogWriter | None = None
        self._seq = 0
        self.queries: dict[str, LabeledQuery] = {}
        # (query_id, doc_id) -> {labeler: grade}
        self.labels: dict[tuple[str, str], dict[str, int]] = {}
        self._replay()

    # -------------------------------------------------------------- durability

    def _files(self) -> list[str]:
        return [k for k in self.storage.list(self.prefix) if k.endswith(".log")]

    def _replay(self) -> None:
        files = self._files()
        events: dict[int, dict] = {}
        for key in files:
            for batch in _iter_batches(self.storage.read_log(key)):
                for e in batch:
                    events.setdefault(int(e["s"]), e)
        for s in sorted(events):
            self._apply(events[s])
            self._seq = max(self._seq, s)
        if len(files) > COMPACT_FILES and events:
            # one new synced file with every event first, then the old ones go: a crash
            # in between leaves duplicates, which replay ignores by sequence number
            self._open_writer()
            self._write([events[s] for s in sorted(events)])
            for key in files:
                self.storage.delete(key)

    def _open_writer(self) -> None:
        if self._writer is None:
            key = f"{self.prefix}{self._seq + 1:020d}-{uuid.uuid4().hex[:8]}.log"
            self._writer = self.storage.open_log(key)

    def _write(self, events: list[dict]) -> None:
        self._open_writer()
        append_record(self._writer, _encode(events))

    def _commit(self, events: list[dict]) -> None:
        """Number, persist (synced) and apply events; called with the lock held."""
        if not events:
            return
        for e in events:
            self._seq += 1
            e["s"] = self._seq
        try:
            self._write(events)
        except BaseException:
            self._seq -= len(events)
            raise
        for e in events:
            self._apply(e)

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # ------------------------------------------------------------------ events

    def _apply(self, e: dict) -> None:
        if e["k"] == "label":
            key = (e["q"], e["d"])
            if e.get("g") is None:
                self.labels.get(key, {}).pop(e["u"], None)
            else:
                self.labels.setdefault(key, {})[e["u"]] = int(e["g"])
            return
        action, qid = e["a"], e["q"]
        hist = {"action": action, "labeler": e.get("u"), "at": e.get("t")}
        if action in ("import", "add"):
            r = e["r"]
            q = LabeledQuery(
                query_id=qid, query=r["query"], status=r.get("status", "accepted"),
                source=r.get("source", "human"), split=r.get("split", "test"),
                relevant=dict(r.get("relevant") or {}), provenance=dict(r.get("provenance") or {}),
                extra={k: v for k, v in r.items() if k not in _GOLDEN_KEYS},
                original_query=(r.get("provenance") or {}).get("original_query"),
            )
            q.history.append(hist)
            self.queries[qid] = q
            return
        q = self.queries[qid]
        q.history.append(hist)
        if action == "accept":
            q.status = "accepted"
        elif action == "reject":
            q.status = "rejected"
        elif action == "edit":
            if q.original_query is None:
                q.original_query = q.query
            q.query = e["text"]
            q.status = "edited"

    # ------------------------------------------------------------------ writes

    def label(self, query_id: str, doc_id: str, grade: int | None, labeler: str,
              valid_doc: "Any" = None) -> None:
        """Record ``labeler``'s grade (0..3, or None to clear theirs) for a pair; durable on return.

        ``valid_doc(doc_id) -> bool`` lets the caller refuse ids not in the collection."""
        labeler = _check_name(labeler, "labeler")
        _check_name(doc_id, "doc_id")
        if grade is not None and (isinstance(grade, bool) or grade not in GRADES):
            raise LabelError(f"grade must be one of 0, 1, 2, 3, got {grade!r}")
        with self._lock:
            if query_id not in self.queries:
                raise LabelError(f"unknown query_id {query_id!r}")
            if valid_doc is not None and not valid_doc(doc_id):
                raise LabelError(f"doc_id {doc_id!r} is not in the collection")
            self._commit([{"k": "label", "q": query_id, "d": doc_id, "u": labeler, "g": grade, "t": _now()}])

    def add_query(self, text: str, labeler: str, query_id: str | None = None, split: str = "test") -> LabeledQuery:
        """A new query written by a person (source ``human`` until labeled)."""
        text = _check_name(text, "query").strip()
        labeler = _check_name(labeler, "labeler")
        if split not in ("tune", "test"):
            raise LabelError(f"split must be 'tune' or 'test', got {split!r}")
        with self._lock:
            qid = query_id or self._new_id()
            if qid in self.queries:
                raise LabelError(f"query_id {qid!r} already exists")
            record = {"query": text, "status": "accepted", "source": "human", "split": split,
                      "provenance": {"added_by": labeler, "created_at": _now()}}
            self._commit([{"k": "query", "a": "add", "q": qid, "r": record, "u": labeler, "t": _now()}])
            return self.queries[qid]

    def _new_id(self) -> str:
        n = len(self.queries) + 1
        while f"q-label-{n:05d}" in self.queries:
            n += 1
        return f"q-label-{n:05d}"

    def query_action(self, query_id: str, action: str, labeler: str, text: str | None = None) -> LabeledQuery:
        """Accept, edit (with ``text``) or reject a query; durable on return."""
        labeler = _check_name(labeler, "labeler")
        if action not in ("accept", "edit", "reject"):
            raise LabelError(f"action must be 'accept', 'edit' or 'reject', got {action!r}")
        event = {"k": "query", "a": action, "q": query_id, "u": labeler, "t": _now()}
        if action == "edit":
            event["text"] = _check_name(text, "text").strip()
        with self._lock:
            if query_id not in self.queries:
                raise LabelError(f"unknown query_id {query_id!r}")
            self._commit([event])
            return self.queries[query_id]

    def import_golden(self, records: Iterable[dict], labeler: str = "import", collection: Any = None) -> dict[str, int]:
        """Add golden-set lines whose query_id is not known yet (one synced batch); returns
        ``{"added": n, "skipped": m}``. Lines are checked first (and their ids against
        ``collection`` when given): one bad line adds nothing."""
        checked = [_check_golden(r, i) for i, r in enumerate(records, 1)]
        if collection is not None:
            check_ids(collection, checked)
        seen: set[str] = set()
        for r in checked:
            if r["query_id"] in seen:
                raise LabelError(f"query_id {r['query_id']!r} appears twice in the golden set")
            seen.add(r["query_id"])
        with self._lock:
            new = [r for r in checked if r["query_id"] not in self.queries]
            events = [{"k": "query", "a": "import", "q": r["query_id"],
                       "r": {k: v for k, v in r.items() if k != "query_id"}, "u": labeler, "t": _now()}
                      for r in new]
            self._commit(events)
        return {"added": len(new), "skipped": len(checked) - len(new)}

    # ------------------------------------------------------------------- reads

    def grades_of(self, query_id: str, labeler: str) -> dict[str, int]:
        with self._lock:
            return {d: g[labeler] for (q, d), g in self.labels.items() if q == query_id and labeler in g}

    def labelers(self) -> list[str]:
        with self._lock:
            return sorted({u for g in self.labels.values() for u in g})

    def snapshot(self) -> tuple[dict[str, LabeledQuery], dict[tuple[str, str], dict[str, int]]]:
        with self._lock:
            return dict(self.queries), {k: dict(v) for k, v in self.labels.items() if v}

    def progress(self) -> dict[str, Any]:
        """Counts for the page: queries, labels per labeler, pairs labeled twice, agreement."""
        queries, labels = self.snapshot()
        per_labeler: dict[str, int] = {}
        for g in labels.values():
            for u in g:
                per_labeler[u] = per_labeler.get(u, 0) + 1
        labeled_queries = {q for (q, _d) in labels}
        status: dict[str, int] = {}
        for q in queries.values():
            status[q.status] = status.get(q.status, 0) + 1
        return {
            "queries": len(queries),
            "queries_labeled": len(labeled_queries & set(queries)),
            "status": status,
            "pairs_labeled": len(labels),
            "pairs_labeled_twice": sum(1 for g in labels.values() if len(g) >= 2),
            "labels": sum(per_labeler.values()),
            "per_labeler": per_labeler,
            "agreement": agreement(labels),
        }

    def export(self) -> list[dict]:
        """The golden set (list of schema dicts, in query order) built from labels and edits."""
        queries, labels = self.snapshot()
        by_query: dict[str, dict[str, dict[str, int]]] = {}
        for (q, d), g in labels.items():
            by_query.setdefault(q, {})[d] = g
        out = []
        for qid, q in queries.items():
            human = by_query.get(qid, {})
            relevant = dict(q.relevant)
            for d, g in human.items():
                relevant[d] = combine_grades(list(g.values()))
            prov = dict(q.provenance)
            if q.original_query is not None:
                prov["original_query"] = q.original_query
            if human:
                prov["labelers"] = sorted({u for g in human.values() for u in g})
                prov["labels"] = {d: dict(sorted(g.items())) for d, g in sorted(human.items())}
                prov["label_aggregation"] = "mean, rounded half up"
                if q.source != "labeled":
                    prov.setdefault("original_source", q.source)
            prov.setdefault("collection_id", self.collection_id)
            line = {"query_id": qid, "query": q.query, "relevant": dict(sorted(relevant.items())),
                    "split": q.split, "source": "labeled" if human else q.source, "status": q.status,
                    "provenance": prov}
            line.update(q.extra)
            out.append(line)
        return out


def combine_grades(grades: list[int]) -> int:
    """Labelers' grades for one pair -> one grade: the mean, rounded half up."""
    mean = sum(grades) / len(grades)
    return min(3, int(mean + 0.5))


# --------------------------------------------------------------------- agreement


def cohen_kappa(a: list[int], b: list[int]) -> float | None:
    """Cohen's kappa of two raters' grades on the same items (None when chance agreement
    is total, i.e. both gave one identical grade to everything: kappa is undefined)."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    po = sum(1 for x, y in zip(a, b) if x == y) / n
    pe = sum((a.count(c) / n) * (b.count(c) / n) for c in set(a) | set(b))
    if pe >= 1.0:
        return None
    return (po - pe) / (1 - pe)


def agreement(labels: dict[tuple[str, str], dict[str, int]]) -> dict[str, Any]:
    """Cohen's kappa for each pair of labelers over the pairs both graded, and their mean."""
    names = sorted({u for g in labels.values() for u in g})
    pairs = []
    for i, u in enumerate(names):
        for w in names[i + 1:]:
            common = [(g[u], g[w]) for g in labels.values() if u in g and w in g]
            if not common:
                continue
            a = [x for x, _ in common]
            b = [y for _, y in common]
            k = cohen_kappa(a, b)
            pairs.append({"labelers": [u, w], "items": len(common),
                          "observed": sum(1 for x, y in common if x == y) / len(common),
                          "kappa": None if k is None else round(k, 4)})
    ks = [p["kappa"] for p in pairs if p["kappa"] is not None]
    return {"pairs": pairs, "mean_kappa": round(sum(ks) / len(ks), 4) if ks else None}


# ----------------------------------------------------------------- golden files
# The golden-set format is gleandb.evals.golden's; these helpers give the label store its
# records as dicts (with split/source/status filled in) and turn format errors into LabelError.


def _check_golden(r: Any, line: int) -> dict:
    try:
        q = GoldenQuery.from_dict(r, f"golden set line {line}")
    except GoldenSetError as exc:
        raise LabelError(str(exc)) from None
    out = q.to_dict()
    out["split"] = q.split_name
    return out


def parse_golden(text: str) -> list[dict]:
    """Golden-set JSONL text -> list of dicts (blank and ``#`` lines skipped), checked."""
    out = []
    for i, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        try:
            r = json.loads(s)
        except json.JSONDecodeError as exc:
            raise LabelError(f"golden set line {i}: not JSON ({exc.msg})") from None
        out.append(_check_golden(r, i))
    return out


def read_golden(path: str) -> list[dict]:
    try:
        return [_check_golden(q.to_dict(), i) for i, q in enumerate(GoldenSet.load(path), 1)]
    except GoldenSetError as exc:
        raise LabelError(str(exc)) from None


def dump_golden(lines: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)


def write_golden(path: str, lines: list[dict]) -> None:
    GoldenSet.from_records(lines).save(path)


# ------------------------------------------------------------------ per collection

_STORES: "weakref.WeakKeyDictionary[Any, dict[str, LabelStore]]" = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def label_store(collection: Any) -> LabelStore:
    """The LabelStore of a collection, shared by everyone using the same open store (one
    writer per log, like the WAL)."""
    engine = client_of(collection).engine
    cid = str(collection.id)
    with _STORES_LOCK:
        stores = _STORES.setdefault(engine, {})
        s = stores.get(cid)
        if s is None:
            s = stores[cid] = LabelStore(engine.storage, cid)
        return s


def shuffled(ids: list[str], query_id: str, labeler: str) -> list[str]:
    """Candidates in an order fixed per (query, labeler): stable across reloads, different
    between labelers, unrelated to which configuration found them."""
    seed = int.from_bytes(hashlib.sha256(f"{query_id}\0{labeler}".encode()).digest()[:8], "big")
    out = sorted(ids)
    random.Random(seed).shuffle(out)
    return out


def missing_ids(collection: Any, records: list[dict]) -> list[str]:
    """Relevant ids of golden-set lines that the collection does not hold (sorted)."""
    wanted = sorted({d for r in records for d in (r.get("relevant") or {})})
    found: set[str] = set()
    for i in range(0, len(wanted), 1000):
        found.update(collection.get(ids=wanted[i:i + 1000], include=[])["ids"])
    return [d for d in wanted if d not in found]


def check_ids(collection: Any, records: list[dict]) -> None:
    """Refuse golden-set lines naming records the collection does not hold."""
    missing = missing_ids(collection, records)
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise LabelError(f"the golden set names {len(missing)} record id(s) not in collection "
                         f"{collection.name!r}: {shown}")
