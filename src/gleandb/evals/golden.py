"""Golden sets: the queries and graded relevance judgments that retrieval is scored against.

A golden set is a JSONL file a person can read and edit, one query per line (the format is
shared by every evals module and by the labeling page; see docs/evals.md)::

    {"query_id": "q-1", "query": "...", "relevant": {"doc-1": 3, "doc-7": 1},
     "split": "test", "source": "human", "status": "accepted", "provenance": {...}}

Grades are 0-3 (0 = judged not relevant, kept because a person judged it). A query is
*scorable* when it is not rejected and has at least one id graded >= 1; the others are
reported, never silently dropped. Unknown top-level keys survive a load/save round trip,
so files written by newer versions are not damaged by older ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

SPLITS = ("tune", "test")
SOURCES = ("generated", "human", "benchmark", "labeled")
STATUSES = ("unreviewed", "accepted", "edited", "rejected")
GRADES = (0, 1, 2, 3)
KNOWN_KEYS = ("query_id", "query", "relevant", "split", "source", "status", "provenance")


class GoldenSetError(ValueError):
    """A golden set that cannot be scored as written: the message names the query and the value."""


def _where(where: str) -> str:
    return f"{where}: " if where else ""


@dataclass
class GoldenQuery:
    """One query and its judgments. ``split`` None means "not given" (scored as ``test``,
    and free for :meth:`GoldenSet.assign_splits` to place)."""

    query_id: str
    query: str
    relevant: dict[str, int] = field(default_factory=dict)
    split: str | None = None
    source: str = "human"
    status: str = "accepted"
    provenance: dict | None = None
    extra: dict = field(default_factory=dict)   # unknown keys, kept for the round trip

    def __post_init__(self) -> None:
        self.check()

    def check(self, where: str = "") -> None:
        """Field checks; errors name the query, the field and the value."""
        w = _where(where)
        if not isinstance(self.query_id, str) or not self.query_id:
            raise GoldenSetError(f"{w}query_id must be a non-empty string, got {self.query_id!r}")
        q = f"{w}query {self.query_id!r}"
        if not isinstance(self.query, str) or not self.query.strip():
            raise GoldenSetError(f"{q}: query must be a non-empty string, got {self.query!r}")
        if not isinstance(self.relevant, Mapping):
            raise GoldenSetError(f"{q}: relevant must be an object {{record id: grade 0-3}}, got {self.relevant!r}")
        for rid, grade in self.relevant.items():
            if not isinstance(rid, str) or not rid:
                raise GoldenSetError(f"{q}: relevant ids must be non-empty strings, got {rid!r}")
            if isinstance(grade, bool) or grade not in GRADES or not isinstance(grade, int):
                raise GoldenSetError(f"{q}: grade of {rid!r} must be an integer 0-3, got {grade!r}")
        self.relevant = dict(self.relevant)
        if self.split is not None and self.split not in SPLITS:
            raise GoldenSetError(f"{q}: split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.source not in SOURCES:
            raise GoldenSetError(f"{q}: source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.status not in STATUSES:
            raise GoldenSetError(f"{q}: status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.provenance is not None and not isinstance(self.provenance, dict):
            raise GoldenSetError(f"{q}: provenance must be an object, got {self.provenance!r}")

    @property
    def split_name(self) -> str:
        """The split it is scored in (``test`` when none was given)."""
        return self.split or "test"

    @property
    def relevant_ids(self) -> set[str]:
        """Ids graded >= 1 (grade 0 means judged not relevant)."""
        return {r for r, g in self.relevant.items() if g >= 1}

    @property
    def scorable(self) -> bool:
        return self.status != "rejected" and bool(self.relevant_ids)

    @classmethod
    def from_dict(cls, d: Any, where: str = "") -> "GoldenQuery":
        if not isinstance(d, dict):
            raise GoldenSetError(f"{_where(where)}each query must be a JSON object, got {d!r:.80}")
        for key in ("query_id", "query"):
            if key not in d:
                raise GoldenSetError(f"{_where(where)}missing required key {key!r} in {d!r:.120}")
        extra = {k: v for k, v in d.items() if k not in KNOWN_KEYS}
        try:
            return cls(query_id=d["query_id"], query=d["query"], relevant=d.get("relevant", {}),
                       split=d.get("split"), source=d.get("source", "human"), status=d.get("status", "accepted"),
                       provenance=d.get("provenance"), extra=extra)
        except GoldenSetError as exc:
            raise GoldenSetError(f"{_where(where)}{exc}") from None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"query_id": self.query_id, "query": self.query, "relevant": dict(self.relevant)}
        if self.split is not None:
            out["split"] = self.split
        out["source"] = self.source
        out["status"] = self.status
        if self.provenance is not None:
            out["provenance"] = self.provenance
        out.update(self.extra)
        return out


class GoldenSet:
    """An ordered list of :class:`GoldenQuery` (file order is kept)."""

    def __init__(self, queries: Iterable[GoldenQuery] = ()):
        self.queries: list[GoldenQuery] = list(queries)
        for q in self.queries:
            if not isinstance(q, GoldenQuery):
                raise GoldenSetError(f"a GoldenSet holds GoldenQuery objects, got {q!r:.80}")

    def __len__(self) -> int:
        return len(self.queries)

    def __iter__(self) -> Iterator[GoldenQuery]:
        return iter(self.queries)

    def __getitem__(self, i: int) -> GoldenQuery:
        return self.queries[i]

    def __repr__(self) -> str:
        return f"GoldenSet({len(self)} queries, {len(self.scorable())} scorable)"

    # ------------------------------------------------------------------ I/O

    @classmethod
    def from_records(cls, records: Iterable[Any]) -> "GoldenSet":
        """From dicts in the file format (or GoldenQuery objects)."""
        out = []
        for i, r in enumerate(records):
            out.append(r if isinstance(r, GoldenQuery) else GoldenQuery.from_dict(r, f"record {i}"))
        return cls(out)

    @classmethod
    def load(cls, path: str | Path) -> "GoldenSet":
        """Read a JSONL file (blank lines and lines starting with ``#`` are skipped)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise GoldenSetError(f"golden set {str(p)!r}: no such file") from None
        except UnicodeDecodeError as exc:
            raise GoldenSetError(f"golden set {str(p)!r}: not UTF-8 text ({exc})") from None
        queries = []
        for n, line in enumerate(text.splitlines(), 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            where = f"{p.name} line {n}"
            try:
                d = json.loads(s)
            except json.JSONDecodeError as exc:
                raise GoldenSetError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            queries.append(GoldenQuery.from_dict(d, where))
        return cls(queries)

    def save(self, path: str | Path) -> None:
        """Write JSONL, one query per line, UTF-8 (written to a temporary file, then renamed)."""
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for q in self.queries:
                f.write(json.dumps(q.to_dict(), ensure_ascii=False) + "\n")
        tmp.replace(p)

    def to_records(self) -> list[dict]:
        return [q.to_dict() for q in self.queries]

    # ---------------------------------------------------------------- views

    def scorable(self) -> "GoldenSet":
        return GoldenSet(q for q in self.queries if q.scorable)

    def unscorable(self) -> "GoldenSet":
        return GoldenSet(q for q in self.queries if not q.scorable)

    def split(self, name: str) -> "GoldenSet":
        """The queries of one split (``tune`` or ``test``; a query without a split is ``test``)."""
        if name not in SPLITS:
            raise GoldenSetError(f"split must be one of {', '.join(SPLITS)}, got {name!r}")
        return GoldenSet(q for q in self.queries if q.split_name == name)

    @property
    def tune(self) -> "GoldenSet":
        return self.split("tune")

    @property
    def test(self) -> "GoldenSet":
        return self.split("test")

    @property
    def has_splits(self) -> bool:
        """Whether any query names its split."""
        return any(q.split is not None for q in self.queries)

    def assign_splits(self, fraction: float = 0.5, seed: int = 0, overwrite: bool = False) -> "GoldenSet":
        """A copy where queries without a split (all, with ``overwrite``) get one: ``fraction``
        of them ``tune``, the rest ``test``. Deterministic: the queries are ordered by a hash of
        (seed, query_id), so the same file and seed always give the same split, whatever the
        file order."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise GoldenSetError(f"fraction must be a number in [0, 1], got {fraction!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise GoldenSetError(f"seed must be an integer, got {seed!r}")
        copies = [GoldenQuery(**{**q.__dict__, "relevant": dict(q.relevant), "extra": dict(q.extra)})
                  for q in self.queries]
        free = [q for q in copies if overwrite or q.split is None]

        def key(q: GoldenQuery) -> bytes:
            return hashlib.blake2b(f"{seed}\x00{q.query_id}".encode(), digest_size=8).digest()

        order = sorted(free, key=key)
        n_tune = int(round(fraction * len(order)))
        for i, q in enumerate(order):
            q.split = "tune" if i < n_tune else "test"
        return GoldenSet(copies)

    # ----------------------------------------------------------- validation

    def validate(self, collection: Any = None, batch_size: int = 1000) -> dict:
        """Check that the set can be scored (against ``collection`` when given).

        Raises :class:`GoldenSetError` for an empty set, duplicate query ids, a set with no
        scorable query, and judged ids that are not in the collection (named, the first 10).
        Returns a summary: ``queries``, ``scorable``, ``unscorable`` (ids), ``rejected``."""
        if not self.queries:
            raise GoldenSetError("the golden set is empty: it has no queries")
        for q in self.queries:
            q.check()
        seen: set[str] = set()
        dups: list[str] = []
        for q in self.queries:
            if q.query_id in seen and q.query_id not in dups:
                dups.append(q.query_id)
            seen.add(q.query_id)
        if dups:
            raise GoldenSetError(f"duplicate query_id in the golden set: {', '.join(map(repr, dups[:10]))}"
                                 + (f" and {len(dups) - 10} more" if len(dups) > 10 else ""))
        if collection is not None:
            missing = self.missing_ids(collection, batch_size)
            if missing:
                shown = ", ".join(repr(m) for m in missing[:10])
                more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
                raise GoldenSetError(f"the golden set names {len(missing)} record id(s) that are not in collection "
                                     f"{collection.name!r}: {shown}{more}")
        scorable = [q for q in self.queries if q.scorable]
        if not scorable:
            raise GoldenSetError(f"no query in the golden set can be scored ({len(self)} queries: each needs "
                                 "status other than 'rejected' and at least one id graded >= 1)")
        return {"queries": len(self), "scorable": len(scorable),
                "unscorable": [q.query_id for q in self.queries if not q.scorable],
                "rejected": sum(q.status == "rejected" for q in self.queries)}

    def missing_ids(self, collection: Any, batch_size: int = 1000) -> list[str]:
        """Judged ids (any grade) that ``collection`` does not hold, in first-seen order."""
        wanted = list(dict.fromkeys(r for q in self.queries for r in q.relevant))
        missing = []
        for s in range(0, len(wanted), batch_size):
            part = wanted[s : s + batch_size]
            found = set(collection.get(ids=part, include=[])["ids"])
            missing += [r for r in part if r not in found]
        return missing
