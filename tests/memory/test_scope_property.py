"""Property: no sequence of operations in one scope changes what another scope recalls.

A hypothesis state machine drives scope B (remember, update, forget by id and by where,
reset, and every attempt to reach scope A's memories by id) against a plain dict model of
B's live memories, while scope A, seeded with the same kinds of texts, is checked after
every step: what A recalls (ids, texts, metadata), lists, gets and its history are exactly
as before B started. B's memories share texts with A's, so a dedupe across scopes would
show up here.

What is not asserted: A's recall *scores*. BM25 statistics are collection-wide
(docs/memory.md, "Scopes"), so B's texts move A's BM25 scores and could reorder A's
hits that are otherwise tied; which memories A recalls, and their content, never change.
"""

from __future__ import annotations

import shutil
import tempfile

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, precondition, rule

import gleandb
from gleandb.embeddings.hashing import HashingEmbeddingFunction
from gleandb.memory import MemoryNotFoundError

TEXTS = ["I live in Paris", "I live in Berlin now", "Prefers invoices in EUR", "Prefers invoices in CHF",
         "Allergic to peanuts", "Works at Acme", "Likes hiking", "I like coffee", "I like tea"]
KINDS = ["fact", "preference"]
QUERIES = ["where do I live", "invoices currency", "peanuts hiking coffee"]
NOW = 1_700_000_000.0


def snapshot(mem: gleandb.Memory, a_ids: list[str]) -> dict:
    recall = {q: sorted((h.id, h.text, tuple(sorted(h.metadata.items()))) for h in mem.recall(q, k=50))
              for q in QUERIES}
    return {"recall": recall, "list": [(h.id, h.text, h.metadata) for h in mem.list()],
            "get": [None if (h := mem.get(i)) is None else (h.text, h.updated_at) for i in a_ids],
            "history": [mem.history(i) for i in a_ids]}


class ScopeIsolation(RuleBasedStateMachine):
    b_ids = Bundle("b_ids")

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="memprop-")
        self.client = gleandb.PersistentClient(path=self.dir)
        ef = HashingEmbeddingFunction()
        clock = lambda: NOW  # noqa: E731
        self.a = gleandb.Memory(self.client, {"user": "alice"}, embedding_function=ef, clock=clock)
        self.b = gleandb.Memory(self.client, {"user": "bob"}, embedding_function=ef, clock=clock, dedupe=False)
        for i, t in enumerate(TEXTS[::2]):
            self.a.remember(t, metadata={"kind": KINDS[i % 2]})
        self.a_ids = [h.id for h in self.a.list()]
        self.a.forget(self.a_ids[-1])  # A also has a tombstone B must not reach
        self.before = snapshot(self.a, self.a_ids)
        self.model: dict[str, tuple[str, str]] = {}

    def teardown(self) -> None:
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(target=b_ids, text=st.sampled_from(TEXTS), kind=st.sampled_from(KINDS))
    def remember(self, text, kind):
        mid = self.b.remember(text, metadata={"kind": kind})
        self.model[mid] = (text, kind)
        return mid

    @rule(mid=b_ids, text=st.sampled_from(TEXTS))
    def update(self, mid, text):
        if mid in self.model:
            self.b.update(mid, text)
            self.model[mid] = (text, self.model[mid][1])
        else:
            try:
                self.b.update(mid, text)
                raise AssertionError("updated a forgotten memory")
            except MemoryNotFoundError:
                pass

    @rule(mid=consumes(b_ids))
    def forget(self, mid):
        assert self.b.forget(mid) == (1 if self.model.pop(mid, None) else 0)

    @rule(kind=st.sampled_from(KINDS), erase=st.booleans())
    def forget_where(self, kind, erase):
        gone = [m for m, (_, k) in self.model.items() if k == kind]
        assert self.b.forget(where={"kind": kind}, erase=erase) == len(gone)
        for m in gone:
            del self.model[m]

    @precondition(lambda self: len(self.model) > 3)
    @rule()
    def reset(self):
        self.b.reset()
        self.model.clear()

    @rule(i=st.integers(0, 4), text=st.sampled_from(TEXTS), data=st.data())
    def reach_into_a(self, i, text, data):
        mid = self.a_ids[i % len(self.a_ids)]
        assert self.b.get(mid) is None
        assert self.b.forget(mid) == 0
        assert self.b.forget([mid], erase=data.draw(st.booleans())) == 0
        for call in (lambda: self.b.update(mid, text), lambda: self.b.history(mid)):
            try:
                call()
                raise AssertionError("scope B reached scope A's memory")
            except MemoryNotFoundError:
                pass

    @invariant()
    def a_unchanged(self):
        assert snapshot(self.a, self.a_ids) == self.before

    @invariant()
    def b_matches_model(self):
        assert {h.id: (h.text, h.metadata["kind"]) for h in self.b.list()} == self.model


ScopeIsolation.TestCase.settings = settings(max_examples=25, stateful_step_count=12, deadline=None,
                                            suppress_health_check=[HealthCheck.too_slow])
test_scope_isolation = ScopeIsolation.TestCase
