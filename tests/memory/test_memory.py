"""remember / recall / update / forget / history / get / list / context, embedded."""

from __future__ import annotations

import pytest

import gleandb
from gleandb.memory import MemoryArgumentError, MemoryHit, MemoryNotFoundError


def test_remember_recall_with_why(make):
    mem = make()
    a = mem.remember("Prefers invoices in EUR; billing contact is ana@example.com", metadata={"kind": "preference"})
    mem.remember("The office dog is called Biscuit")
    hits = mem.recall("which currency for invoices?", k=5)
    assert isinstance(hits[0], MemoryHit) and hits[0].id == a
    assert hits[0].metadata == {"kind": "preference"} and hits[0].scope == {"agent": "support", "user": "u42"}
    why = hits[0].why
    assert why["bm25"]["rank"] == 0 and why["dense"]["rank"] == 0
    assert why["relevance"] == 1.0 and why["recency"] == pytest.approx(1.0) and why["importance"] == 0.5
    w = why["weights"]
    assert hits[0].score == pytest.approx(w["relevance"] * 1.0 + w["recency"] * why["recency"] + w["importance"] * 0.5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert gleandb.memory.Memory is gleandb.Memory
    import json
    json.dumps([h.to_dict() for h in hits])  # plain numbers only (the MCP tools send these as JSON)


def test_weights_recency_and_importance_change_the_order(make, clock):
    old_imp = make(weights={"relevance": 0.0, "recency": 0.0, "importance": 1.0}, dedupe=False)
    a = old_imp.remember("note about the quarterly report", importance=0.9)
    clock.advance(90 * 86400)
    b = old_imp.remember("note about the quarterly report draft", importance=0.1)
    assert [h.id for h in old_imp.recall("quarterly report", k=2)] == [a, b]
    by_recency = make(weights={"relevance": 0.0, "recency": 1.0, "importance": 0.0}, dedupe=False)
    assert [h.id for h in by_recency.recall("quarterly report", k=2)] == [b, a]
    r = by_recency.recall("quarterly report", k=2)
    assert r[1].why["recency"] == pytest.approx(0.5 ** 3)  # 90 days at the default 30-day half-life
    half = make(weights={"relevance": 0.0, "recency": 1.0, "importance": 0.0}, half_life=90 * 86400, dedupe=False)
    assert half.recall("quarterly report", k=2)[1].why["recency"] == pytest.approx(0.5)


def test_update_keeps_history(make, clock):
    mem = make()
    mid = mem.remember("Prefers invoices in EUR")
    clock.advance(60)
    mem.update(mid, "Prefers invoices in CHF since March")
    assert mem.get(mid).text == "Prefers invoices in CHF since March"
    assert mem.get(mid).updated_at == clock.t and mem.get(mid).created_at == clock.t - 60
    h = mem.history(mid)
    assert [(e["event"], e["text"]) for e in h] == [("added", "Prefers invoices in EUR"),
                                                      ("updated", "Prefers invoices in CHF since March")]
    assert [x.text for x in mem.recall("invoices currency")] == ["Prefers invoices in CHF since March"]


def test_restatement_updates_instead_of_adding(make):
    mem = make()
    a = mem.remember("I live in Paris")
    assert mem.remember("I live in Paris.", importance=0.9) == a
    assert mem.last_decision.decision == "same"
    assert [h.text for h in mem.list()] == ["I live in Paris."]
    assert mem.get(a).importance == 0.9
    assert [e["event"] for e in mem.history(a)] == ["added", "updated"]


def test_changed_fact_supersedes(make, clock):
    mem = make()
    old = mem.remember("I live in Paris")
    clock.advance(10)
    new = mem.remember("I live in Berlin now")
    assert new != old and mem.last_decision.decision == "supersedes" and mem.last_decision.id == old
    assert [h.id for h in mem.recall("where do I live", k=5)] == [new]
    assert mem.get(old) is None
    events = [(e["memory_id"], e["event"], e["text"]) for e in mem.history(new)]
    assert events == [(old, "added", "I live in Paris"), (new, "added", "I live in Berlin now"),
                      (old, "superseded", "I live in Paris")]
    with pytest.raises(MemoryNotFoundError):
        mem.update(old, "x")  # history, not a live memory


def test_supersession_is_one_write(make, client, clock):
    """The new fact and the superseded one are written together (one WAL record), so no
    crash point leaves both live."""
    mem = make()
    old = mem.remember("I live in Paris")
    col = client.get_collection("memories")
    store = col._store
    emb = col.get(ids=[old], include=["embeddings"])["embeddings"][0]
    before = store.stats["wal_records"]
    new = mem.remember("I live in Berlin now")
    assert mem.last_decision.decision == "supersedes"
    assert store.stats["wal_records"] == before + 1
    got = col.get(ids=[old, new], include=["documents", "metadatas", "embeddings"])
    status = {i: m["_mem.status"] for i, m in zip(got["ids"], got["metadatas"])}
    assert status == {old: "superseded", new: "live"}
    assert dict(zip(got["ids"], got["documents"]))[old] == "I live in Paris"
    assert list(dict(zip(got["ids"], got["embeddings"]))[old]) == list(emb)  # text and vector unchanged


def test_subject_key_supersedes_and_unrelated_is_added(make):
    mem = make()
    a = mem.remember("Works at Acme", metadata={"subject": "employer"})
    b = mem.remember("Joined Globex as an engineer", metadata={"subject": "employer"})
    assert mem.last_decision.decision == "supersedes" and mem.last_decision.id == a
    c = mem.remember("Allergic to peanuts")
    assert mem.last_decision.decision == "unrelated"
    assert {h.id for h in mem.list()} == {b, c}


def test_subject_key_finds_a_memory_far_from_the_new_text(make):
    mem = make(candidates=1)
    a = mem.remember("I live in Paris", metadata={"subject": "city"})
    mem.remember("Moving boxes are in the garage")  # nearer to the new text than a
    b = mem.remember("Moving to Berlin in May", metadata={"subject": "city"})
    assert mem.last_decision.decision == "supersedes" and mem.last_decision.id == a
    assert b in {h.id for h in mem.list()} and a not in {h.id for h in mem.list()}


def test_dedupe_off_keeps_everything(make):
    mem = make(dedupe=False)
    mem.remember("I live in Paris")
    mem.remember("I live in Paris")
    mem.remember("I live in Berlin now")
    assert len(mem.list()) == 3


def test_llm_judge_decides(make):
    from fake_llm import FakeLLM
    from gleandb import evals

    fake = FakeLLM().start()
    try:
        llm = evals.OpenAI(model="judge", base_url=fake.openai_url, api_key="k", max_retries=0)
        mem = make(llm=llm, llm_threshold=0.0)
        a = mem.remember("home city: I live in Paris")
        b = mem.remember("home city: moved to Berlin last month")  # the heuristic alone would add it
        assert mem.last_decision.decision == "supersedes" and mem.last_decision.id == a
        assert mem.last_decision.reason.startswith("LLM")
        c = mem.remember("I like coffee")
        d = mem.remember("I like tea")  # the heuristic alone reads this as a changed value
        assert mem.last_decision.decision == "unrelated"
        assert {h.id for h in mem.list()} == {b, c, d}
        judged = [r for r in fake.requests if r.is_memory_judge]
        assert judged and "New memory: I like tea" in judged[-1].prompt
        # a failing model: the heuristic decides, with a warning, and the memory is stored
        from fake_llm import Reply
        fake.rule = lambda req: Reply(status=500)
        with pytest.warns(gleandb.memory.MemoryJudgeWarning):
            e = mem.remember("I like green tea")
        assert not mem.last_decision.reason.startswith("LLM")
        assert e in {h.id for h in mem.list()}
    finally:
        fake.stop()


def test_forget_by_id_and_where_counts(make):
    mem = make()
    a = mem.remember("Prefers invoices in EUR", metadata={"kind": "preference"})
    mem.remember("Prefers window seats", metadata={"kind": "preference"})
    c = mem.remember("Birthday is 3 May", metadata={"kind": "fact"})
    assert mem.forget(a) == 1
    assert mem.forget(a) == 0
    assert mem.forget(where={"kind": "preference"}) == 1
    assert [h.id for h in mem.list()] == [c]
    assert [h.id for h in mem.recall("invoices window seats birthday")] == [c]


def test_forget_erases_text_from_history_by_default(make):
    mem = make()
    old = mem.remember("I live in Paris")
    new = mem.remember("I live in Berlin now")
    assert mem.forget(new) == 1
    h = mem.history(new)
    assert [e["event"] for e in h] == ["added", "added", "superseded", "forgotten", "forgotten"]
    assert all(e["text"] is None for e in h)  # the superseded predecessor's text is erased too
    assert mem.get(new) is None and mem.get(old) is None
    assert mem.recall("Paris Berlin") == []


def test_forget_without_erase_keeps_text_in_history(make):
    mem = make()
    a = mem.remember("Prefers aisle seats")
    assert mem.forget(a, erase=False) == 1
    assert mem.recall("aisle seats") == [] and mem.get(a) is None
    assert [(e["event"], e["text"]) for e in mem.history(a)] == [("added", "Prefers aisle seats"),
                                                                   ("forgotten", "Prefers aisle seats")]


def test_reset_removes_scope_and_its_tombstones(make):
    mem, other = make(), make(scope={"user": "u43"})
    a = mem.remember("one")
    mem.forget(a)
    mem.remember("two")
    keep = other.remember("two")
    assert mem.reset() == 2
    assert mem.list() == [] and [h.id for h in other.list()] == [keep]
    with pytest.raises(MemoryNotFoundError):
        mem.history(a)


def test_ttl_per_memory_and_per_scope(make, client, clock):
    mem = make()
    short = mem.remember("Parked on level 3", ttl=3600)
    forever = mem.remember("Name is Ana")
    scoped = make(scope={"user": "u42", "session": "s1"}, ttl=60)
    s1 = scoped.remember("Currently debugging the login page")
    clock.advance(61)
    assert scoped.recall("login page debugging") == [] and scoped.get(s1) is None
    assert [e["event"] for e in scoped.history(s1)] == ["added", "expired"]
    assert scoped.history(s1)[0]["text"] is None
    assert mem.get(short) is not None
    clock.advance(3600)
    assert [h.id for h in mem.recall("parked level name")] == [forever]
    # expired records are tombstones: no document left in the collection
    col = client.get_collection("memories")
    assert col.get(ids=[short, s1], include=["documents"])["documents"] == [None, None]
    with pytest.raises(MemoryNotFoundError):
        mem.update(short, "x")


def test_forget_is_real_deletion_after_compaction(make, client, tmp_path):
    mem = make()
    secret = "zqxj-secret-medical-note-9431"
    a = mem.remember(f"Patient note {secret}", metadata={"kind": "health"})
    mem.update(a, f"Patient note revised {secret}")
    mem.remember("Unrelated: likes hiking")
    col = client.get_collection("memories")
    col.flush()

    def files_with_secret():
        return [p for p in (tmp_path / "store").rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]

    assert files_with_secret()  # it was on disk
    assert mem.forget(a) == 1
    client.compact()
    col.compact()
    assert files_with_secret() == []
    assert [e["event"] for e in mem.history(a)] == ["added", "updated", "forgotten"]


def test_context_is_scoped(make):
    mem, other = make(), make(scope={"user": "someone-else"})
    mem.remember("Renewal is due on 1 July; contact ana@example.com")
    other.remember("Renewal of the other customer is due in August")
    ctx = mem.context("prepare the renewal email", max_tokens=800)
    assert "1 July" in ctx.text and "August" not in ctx.text


@pytest.mark.parametrize("call, field", [
    (lambda m: m.remember(""), "text"),
    (lambda m: m.remember("x", importance=2), "importance"),
    (lambda m: m.remember("x", metadata={"_mem.scope": "{}"}), "_mem.scope"),
    (lambda m: m.remember("x", metadata={"k": [1]}), "metadata['k']"),
    (lambda m: m.remember("x", ttl=-1), "ttl"),
    (lambda m: m.recall("x", k=0), "k"),
    (lambda m: m.recall("x", where={"_mem.scope": "{}"}), "_mem.scope"),
    (lambda m: m.forget(), "forget needs"),
    (lambda m: m.forget(where={"$or": [{"_mem.status": "live"}, {"a": 1}]}), "_mem.status"),
    (lambda m: m.list(limit=0), "limit"),
])
def test_bad_input_names_the_field_and_changes_nothing(make, call, field):
    mem = make()
    mem.remember("Keeps one memory")
    before = [(h.id, h.text) for h in mem.list()]
    with pytest.raises(MemoryArgumentError) as ei:
        call(mem)
    assert field in str(ei.value)
    assert [(h.id, h.text) for h in mem.list()] == before


@pytest.mark.parametrize("kw, field", [
    ({"scope": {}}, "scope"), ({"scope": {"user": ""}}, "scope['user']"), ({"weights": {"recency": -1}}, "recency"),
    ({"weights": {"novelty": 1}}, "novelty"), ({"half_life": 0}, "half_life"), ({"ttl": 0}, "ttl"),
    ({"dedupe": "yes"}, "dedupe"), ({"llm": "gpt"}, "llm"), ({"same_threshold": 1.5}, "same_threshold"),
])
def test_bad_constructor_arguments(make, kw, field):
    with pytest.raises(MemoryArgumentError) as ei:
        make(**kw)
    assert field in str(ei.value)


def test_sweep_waits_for_the_earliest_expiry_this_object_knows(make, client, clock):
    """remember / recall skip the expiry sweep until the earliest expiry they know of;
    reads still hide expired memories, and expire() always looks (other writers' TTLs)."""
    col = client.get_or_create_collection("memories")
    mem = make()
    a = mem.remember("Parked on level 3", ttl=100)
    other = make()  # same scope, another object (another process, say)
    b = other.remember("The dentist appointment is on Friday", ttl=10)
    clock.advance(20)
    assert b not in [h.id for h in mem.recall("dentist appointment Friday")]  # expired: hidden, not yet erased
    mem.remember("Likes green tea")
    assert col.get(ids=[b], include=["documents"])["documents"] == ["The dentist appointment is on Friday"]
    assert mem.expire() == 1
    assert col.get(ids=[b], include=["documents"])["documents"] == [None]
    assert mem.get(a) is not None
    clock.advance(100)
    mem.remember("Reads science fiction")  # the clock passed a's expiry: this remember sweeps it
    assert col.get(ids=[a], include=["documents"])["documents"] == [None]
    assert [e["event"] for e in mem.history(a)] == ["added", "expired"]
