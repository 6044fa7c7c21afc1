"""``gleandb.Memory``: remember / recall / update / forget for agents, over one collection.

Memory is context engineering applied to what was said before, so it is built only on
the public Collection API (``add``, ``update``, ``get``, ``delete``, ``retrieve``,
``context``): ``Memory(gleandb.HttpClient(...), ...)`` works unchanged over HTTP, and
the server's tenant-bound tokens isolate tenants as they do for any collection. Inside a
collection, every read and write filters on the scope's canonical key
(``records.SCOPE``), so one scope never sees, changes or erases another's memories.

The record layout is in ``records``, the recall score in ``ranking``, the same /
supersedes / unrelated decision in ``supersede``; this module orchestrates them.
docs/memory.md is the user guide.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, Callable

from gleandb.memory import ranking, records as R, supersede as S
from gleandb.memory.errors import MemoryArgumentError, MemoryNotFoundError
from gleandb.memory.records import MemoryHit

_UNSET: Any = object()
_INC = ["documents", "metadatas"]


def _check_text(text: Any, name: str = "text") -> str:
    if not isinstance(text, str) or not text.strip():
        raise MemoryArgumentError(f"{name} must be a non-empty string, got {text!r}")
    return text


def _check_unit(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise MemoryArgumentError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_ttl(name: str, ttl: Any) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise MemoryArgumentError(f"{name} must be a positive number of seconds or None, got {ttl!r}")
    return float(ttl)


def _check_k(name: str, k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise MemoryArgumentError(f"{name} must be a positive integer, got {k!r}")
    return k


def _num(x: Any, kind: type) -> Any:
    return None if x is None else kind(x)


def _to_sim(distance: float | None, space: str) -> float:
    """Cosine similarity from the collection's distance (unit vectors for l2 and ip)."""
    if distance is None:
        return -1.0
    return 1.0 - distance / 2.0 if space == "l2" else 1.0 - distance


class Memory:
    """One scope's memories in one collection of ``client`` (embedded or HTTP)."""

    def __init__(self, client: Any, scope: dict, collection: Any = "memories", *,
                 weights: dict | None = None, half_life: float = ranking.DEFAULT_HALF_LIFE,
                 ttl: float | None = None, dedupe: bool = True, llm: Any = None,
                 same_threshold: float = 0.92, supersede_threshold: float = 0.4, llm_threshold: float = 0.5,
                 subject_key: str | None = "subject", candidates: int = 5,
                 embedding_function: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.scope, self._key = R.canonical_scope(scope)
        self.weights = ranking.check_weights(weights)
        self.half_life = ranking.check_half_life(half_life)
        self.ttl = _check_ttl("ttl", ttl)
        if not isinstance(dedupe, bool):
            raise MemoryArgumentError(f"dedupe must be True or False, got {dedupe!r}")
        self.dedupe = dedupe
        if llm is not None and not callable(getattr(llm, "complete", None)):
            raise MemoryArgumentError(f"llm must be a chat client with .complete() (evals.OpenAI, ...), got {llm!r}")
        self.llm = llm
        self.same_threshold = _check_unit("same_threshold", same_threshold)
        self.supersede_threshold = _check_unit("supersede_threshold", supersede_threshold)
        self.llm_threshold = _check_unit("llm_threshold", llm_threshold)
        if subject_key is not None and (not isinstance(subject_key, str) or not subject_key):
            raise MemoryArgumentError(f"subject_key must be a non-empty string or None, got {subject_key!r}")
        self.subject_key = subject_key
        self.candidates = _check_k("candidates", candidates)
        self._clock = clock
        self.last_decision: S.Decision | None = None  # how the last remember() was decided
        # earliest expiry of this scope's unswept records as far as this object knows (None: not
        # read yet): remember / recall / list sweep only once the clock reaches it (see _sweep)
        self._next_expiry: float | None = None
        if isinstance(collection, str):
            kw: dict = {"metadata": {"hnsw:space": "cosine"}}
            if embedding_function is not None:
                kw["embedding_function"] = embedding_function
            self.collection = client.get_or_create_collection(collection, **kw)
        elif hasattr(collection, "retrieve"):
            self.collection = collection
        else:
            raise MemoryArgumentError(f"collection must be a name or a Collection, got {collection!r}")
        self._space = self._read_space()

    def _read_space(self) -> str:
        try:
            space = (self.collection.configuration.get("hnsw") or {}).get("space")
        except Exception:
            space = None
        return space or (self.collection.metadata or {}).get("hnsw:space", "l2")

    # ------------------------------------------------------------------ writes

    def remember(self, text: str, metadata: dict | None = None, importance: float = 0.5, ttl: Any = _UNSET) -> str:
        """Store ``text``; returns its memory id. With ``dedupe`` (default) a restatement
        updates the existing memory (its id is returned) and a changed fact supersedes the
        old one (see ``supersede``). ``ttl`` seconds (None: never) overrides the scope's."""
        text = _check_text(text)
        meta = R.check_user_metadata(metadata)
        imp = _check_unit("importance", importance)
        ttl = self.ttl if ttl is _UNSET else _check_ttl("ttl", ttl)
        now = self._clock()
        self._sweep(now)
        expires = now + ttl if ttl else R.NO_EXPIRY
        decision = S.Decision(S.UNRELATED, None, "dedupe is off")
        cands: dict[str, S.Candidate] = {}
        if self.dedupe:
            found = self._neighbours(text, meta, now)
            cands = {c.id: c for c in found}  # the live records, read once (no second get below)
            decision = S.decide(text, meta, found, llm=self.llm,
                                same_threshold=self.same_threshold, supersede_threshold=self.supersede_threshold,
                                llm_threshold=self.llm_threshold, subject_key=self.subject_key)
        self.last_decision = decision
        if decision.decision == S.SAME:
            old = cands[decision.id].metadata
            m = {**old, **meta, R.UPDATED: now, R.IMPORTANCE: max(imp, float(old.get(R.IMPORTANCE, 0))),
                 R.EXPIRES: expires}
            self.collection.update(ids=[decision.id], documents=[text],
                                   metadatas=[R.with_event(m, "updated", now, text)])
            self._expires_at(expires)
            return decision.id
        mid = uuid.uuid4().hex
        ref = decision.id if decision.decision == S.SUPERSEDES else None
        m = {**meta, R.SCOPE: self._key, R.STATUS: R.LIVE, R.CREATED: now, R.UPDATED: now, R.EXPIRES: expires,
             R.IMPORTANCE: imp, R.SUPERSEDED_BY: ""}
        added = R.with_event(m, "added", now, text, ref)
        if ref is None:
            self.collection.add(ids=[mid], documents=[text], metadatas=[added])
        else:
            # one write for both records: a crash or a reader never sees the new fact and the
            # one it supersedes both live (and it is one commit instead of two)
            old_text, old_meta = cands[ref].text, cands[ref].metadata
            om = {**old_meta, R.STATUS: R.SUPERSEDED, R.SUPERSEDED_BY: mid}
            self.collection.upsert(ids=[mid, ref], documents=[text, old_text],
                                   metadatas=[added, R.with_event(om, "superseded", now, old_text, mid)])
        self._expires_at(expires)
        return mid

    def update(self, memory_id: str, text: str | None = None, metadata: dict | None = None,
               importance: float | None = None, ttl: Any = _UNSET) -> None:
        """Change a live memory of this scope in place; the previous text stays in its history."""
        if text is not None:
            _check_text(text)
        meta = R.check_user_metadata(metadata)
        now = self._clock()
        old_text, old = self._one(memory_id, (R.LIVE,), now)
        m = {**old, **meta, R.UPDATED: now}
        if importance is not None:
            m[R.IMPORTANCE] = _check_unit("importance", importance)
        if ttl is not _UNSET:
            t = _check_ttl("ttl", ttl)
            m[R.EXPIRES] = now + t if t else R.NO_EXPIRY
            self._expires_at(m[R.EXPIRES])
        new_text = old_text if text is None else text
        self.collection.update(ids=[memory_id], documents=[new_text],
                               metadatas=[R.with_event(m, "updated", now, new_text)])

    def forget(self, memory_id: str | list[str] | None = None, *, where: dict | None = None,
               erase: bool = True) -> int:
        """Forget live memories of this scope by id(s) and/or ``where``; returns how many.

        ``erase=True`` (default): the text, embedding and caller metadata of the memory and
        of the memories it superseded are deleted (gone from disk after compaction); a
        tombstone keeps only event kinds and times for ``history``. ``erase=False``: the
        memory leaves recall but its text stays in its history."""
        if memory_id is None and where is None:
            raise MemoryArgumentError("forget needs memory_id or where (reset() forgets a whole scope)")
        if not isinstance(erase, bool):
            raise MemoryArgumentError(f"erase must be True or False, got {erase!r}")
        R.check_where(where)
        ids = [memory_id] if isinstance(memory_id, str) else memory_id
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids)):
            raise MemoryArgumentError(f"memory_id must be a non-empty string or a list of them, got {memory_id!r}")
        now = self._clock()
        got = self.collection.get(ids=ids, where=R.and_({R.SCOPE: self._key}, {R.STATUS: R.LIVE}, where),
                                  include=_INC)
        targets = got["ids"]
        if not targets:
            return 0
        if erase:
            self._tombstone(targets + self._predecessors(targets), R.FORGOTTEN, now)
        else:
            metas = [R.with_event({**m, R.STATUS: R.FORGOTTEN}, "forgotten", now, d)
                     for d, m in zip(got["documents"], got["metadatas"])]
            self.collection.update(ids=targets, metadatas=metas)
        return len(targets)

    def reset(self) -> int:
        """Delete every record of this scope, tombstones and history included; returns how many."""
        ids = self.collection.get(where={R.SCOPE: self._key}, include=[])["ids"]
        if ids:
            self.collection.delete(ids=ids)
        return len(ids)

    def expire(self) -> int:
        """Erase this scope's memories whose TTL has passed (also done by remember / recall /
        list); returns how many. Unlike those, always looks: it also finds memories that
        another ``Memory`` object (another process) gave a TTL."""
        return self._sweep(self._clock(), force=True)

    # ------------------------------------------------------------------- reads

    def recall(self, query: str, k: int = 5, where: dict | None = None) -> list[MemoryHit]:
        """The ``k`` best live memories for ``query``, by the score in ``ranking`` (relevance
        from hybrid retrieval, recency, importance); each hit's ``why`` shows the terms."""
        _check_text(query, "query")
        k = _check_k("k", k)
        R.check_where(where)
        now = self._clock()
        self._sweep(now)
        r = self.collection.retrieve(query_texts=[query], n_results=max(4 * k, 50),
                                     where=R.live_filter(self._key, now, where), include=_INC)
        ids, docs, metas = r["ids"][0], r["documents"][0], r["metadatas"][0]
        if not ids:
            return []
        terms = ranking.score(list(r["scores"][0]), [float(m[R.UPDATED]) for m in metas],
                              [float(m.get(R.IMPORTANCE, 0.5)) for m in metas], now, self.weights, self.half_life)
        hits = []
        for i, (mid, doc, meta, t) in enumerate(zip(ids, docs, metas, terms)):
            h = R.hit_from(mid, doc, meta, self.scope)
            ranks, scores = r["ranks"][0][i], r["ranker_scores"][0][i]
            h.score = float(t["score"])
            h.why = {"dense": {"rank": _num(ranks.get("dense"), int), "distance": _num(scores.get("dense"), float)},
                     "bm25": {"rank": _num(ranks.get("bm25"), int), "score": _num(scores.get("bm25"), float)},
                     "fused": float(r["scores"][0][i]), "relevance": float(t["relevance"]),
                     "recency": float(t["recency"]), "importance": float(t["importance"]),
                     "weights": dict(self.weights)}  # plain Python numbers: JSON-ready (MCP, HTTP)
            hits.append(h)
        hits.sort(key=lambda h: -h.score)  # stable: ties keep retrieval order
        return hits[:k]

    def get(self, memory_id: str) -> MemoryHit | None:
        """The live memory with this id in this scope, else None."""
        try:
            text, meta = self._one(memory_id, (R.LIVE,), self._clock())
        except MemoryNotFoundError:
            return None
        return R.hit_from(memory_id, text, meta, self.scope)

    def list(self, where: dict | None = None, limit: int | None = None) -> list[MemoryHit]:
        """This scope's live memories, oldest first."""
        R.check_where(where)
        if limit is not None:
            _check_k("limit", limit)
        now = self._clock()
        self._sweep(now)
        got = self.collection.get(where=R.live_filter(self._key, now, where), include=_INC)
        hits = [R.hit_from(i, d, m, self.scope) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]
        hits.sort(key=lambda h: (h.created_at, h.id))
        return hits if limit is None else hits[:limit]

    def history(self, memory_id: str) -> list[dict]:
        """Events of this memory and of the memories it superseded, oldest first:
        ``event`` (added / updated / superseded / forgotten / expired), ``time``, ``text``
        (None once erased), ``memory_id``, ``ref`` (the memory superseded or superseding)."""
        if not isinstance(memory_id, str) or not memory_id:
            raise MemoryArgumentError(f"memory_id must be a non-empty string, got {memory_id!r}")
        got = self.collection.get(ids=[memory_id], where={R.SCOPE: self._key}, include=["metadatas"])
        if not got["ids"]:
            raise MemoryNotFoundError(f"no memory {memory_id!r} in scope {self.scope}")
        events = R.events_of(memory_id, got["metadatas"][0])
        front = [memory_id]
        while front:
            prev = self.collection.get(where=R.and_({R.SCOPE: self._key}, {R.SUPERSEDED_BY: {"$in": front}}),
                                       include=["metadatas"])
            for i, m in zip(prev["ids"], prev["metadatas"]):
                events.extend(R.events_of(i, m))
            front = prev["ids"]
        order = {e: n for n, e in enumerate(R.EVENTS)}
        events.sort(key=lambda e: (e.time, order.get(e.event, 9)))
        return [e.to_dict() for e in events]

    def context(self, question: str, max_tokens: int = 800, where: dict | None = None, **kwargs: Any) -> Any:
        """``Collection.context`` over this scope's live memories (re-ranked and packed)."""
        _check_text(question, "question")
        R.check_where(where)
        return self.collection.context(question, where=R.live_filter(self._key, self._clock(), where),
                                       max_tokens=max_tokens, **kwargs)

    # ---------------------------------------------------------------- helpers

    def _one(self, mid: Any, statuses: tuple[str, ...], now: float | None = None) -> tuple[str, dict]:
        if not isinstance(mid, str) or not mid:
            raise MemoryArgumentError(f"memory_id must be a non-empty string, got {mid!r}")
        flt = R.and_({R.SCOPE: self._key}, {R.STATUS: {"$in": list(statuses)}},
                     {R.EXPIRES: {"$gt": now}} if now is not None else None)
        got = self.collection.get(ids=[mid], where=flt, include=_INC)
        if not got["ids"]:
            raise MemoryNotFoundError(f"no live memory {mid!r} in scope {self.scope}")
        return got["documents"][0], got["metadatas"][0]

    def _neighbours(self, text: str, meta: dict, now: float) -> list[S.Candidate]:
        """The nearest live memories by embedding, plus those with the same subject value
        (which may be far from the new text: "I moved to Berlin" / "I live in Paris")."""
        # plain dense kNN: the same neighbours and distances as retrieve(mode="dense"), without
        # the hybrid pipeline's per-call overhead (~8 % of a remember)
        r = self.collection.query(query_texts=[text], n_results=self.candidates,
                                  where=R.live_filter(self._key, now), include=[*_INC, "distances"])
        out = [S.Candidate(i, d, _to_sim(dist, self._space), m)
               for i, d, m, dist in zip(r["ids"][0], r["documents"][0], r["metadatas"][0], r["distances"][0])]
        subject = meta.get(self.subject_key) if self.subject_key else None
        if subject is not None:
            seen = {c.id for c in out}
            got = self.collection.get(where=R.live_filter(self._key, now, {self.subject_key: subject}), include=_INC)
            out += [S.Candidate(i, d, -1.0, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])
                    if i not in seen]  # similarity unknown: only the subject rule can pick them
        return sorted(out, key=lambda c: -c.sim)

    def _predecessors(self, ids: list[str]) -> list[str]:
        out, front = [], list(ids)
        while front:
            front = self.collection.get(where=R.and_({R.SCOPE: self._key}, {R.STATUS: R.SUPERSEDED},
                                                     {R.SUPERSEDED_BY: {"$in": front}}), include=[])["ids"]
            out.extend(front)
        return out

    def _tombstone(self, ids: list[str], status: str, now: float) -> None:
        """Replace records by text-free tombstones: delete, then add event kinds and times
        only (compaction then drops the deleted rows from disk)."""
        got = self.collection.get(ids=ids, include=["metadatas", "embeddings"])
        if not got["ids"]:
            return
        dim = len(got["embeddings"][0])
        event = "expired" if status == R.EXPIRED else "forgotten"
        metas = [R.with_event({**R.erased(m), R.STATUS: status}, event, now, None) for m in got["metadatas"]]
        self.collection.delete(ids=got["ids"])
        self.collection.add(ids=got["ids"], embeddings=[[1.0] * dim] * len(got["ids"]), metadatas=metas)

    def _expires_at(self, expires: float) -> None:
        if self._next_expiry is not None and expires < self._next_expiry:
            self._next_expiry = expires

    def _sweep(self, now: float, force: bool = False) -> int:
        """Erase (tombstone) the scope's records whose TTL has passed. Reads never return
        expired records (they filter ``expires > now``), so sweeping is only about physical
        deletion and can wait until the earliest expiry this object knows of: the first sweep
        reads the scope's earliest finite expiry, writes through this object lower it, and
        until the clock reaches it remember / recall / list skip the sweep's query."""
        if not force and self._next_expiry is not None and now < self._next_expiry:
            return 0
        unswept = {R.STATUS: {"$in": [R.LIVE, R.SUPERSEDED]}}
        got = self.collection.get(where=R.and_({R.SCOPE: self._key}, unswept, {R.EXPIRES: {"$lte": now}}),
                                  include=[])
        if got["ids"]:
            self._tombstone(got["ids"], R.EXPIRED, now)
        later = self.collection.get(where=R.and_({R.SCOPE: self._key}, unswept, {R.EXPIRES: {"$gt": now}},
                                                 {R.EXPIRES: {"$lt": R.NO_EXPIRY}}), include=["metadatas"])
        self._next_expiry = min((float(m[R.EXPIRES]) for m in later["metadatas"]), default=math.inf)
        return len(got["ids"])
