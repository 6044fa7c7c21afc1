"""The MCP tools and resources, through the SDK's client (in process over a real store, and
once over stdio against `glean mcp`): what each returns, and that bad calls are tool errors
that leave the store unchanged and the server running."""

from __future__ import annotations

import json

import pytest

from mcp_support import HASHING, Client, call, error, ok, run, stdio_params

import gleandb
from gleandb.server.mcp import LocalBackend, build_server, memory_available

DOCS = {
    "inv": "Invoice 2024-117\nTotal: 420 EUR\nDue within 30 days",
    "faq": "How do refunds work?\nRefunds take 5 business days.",
    "ops": "Deploy with `make release`\nRollback: make rollback VERSION=v1.4.2",
}
CORE_TOOLS = {"list_collections", "create_collection", "collection_info", "modify_collection", "delete_collection",
              "fork", "add", "update", "delete", "get", "query", "retrieve", "grep", "context"}


@pytest.fixture
def backend(tmp_path):
    b = LocalBackend(str(tmp_path / "data"))
    yield b
    b.close()


def _session(backend):
    return Client(build_server(backend))


async def _seed(c) -> None:
    ok(await call(c, "create_collection", name="docs", metadata={"team": "ops"}, configuration=HASHING))
    ok(await call(c, "add", collection="docs", ids=list(DOCS), documents=list(DOCS.values()),
                  metadatas=[{"kind": k} for k in DOCS]))


def test_every_tool_has_a_description_and_a_schema(backend):
    async def go():
        async with _session(backend) as c:
            return (await c.list_tools()).tools

    tools = {t.name: t for t in run(go())}
    assert CORE_TOOLS <= set(tools)
    assert ({"remember", "recall", "forget"} <= set(tools)) == memory_available()
    for t in tools.values():
        assert len(t.description) > 40, t.name
        assert t.input_schema["type"] == "object"
        for prop, schema in t.input_schema["properties"].items():
            assert schema.get("description"), f"{t.name}.{prop} has no description"
    assert tools["grep"].input_schema["required"] == ["collection", "pattern"]
    assert tools["get"].annotations.read_only_hint and tools["delete_collection"].annotations.destructive_hint


def test_collections_records_and_search(backend):
    async def go():
        async with _session(backend) as c:
            await _seed(c)
            listed = ok(await call(c, "list_collections"))["collections"]
            info = ok(await call(c, "collection_info", name="docs", peek=2))
            got = ok(await call(c, "get", collection="docs", where={"kind": "faq"}))
            q = ok(await call(c, "query", collection="docs", query_texts=["refunds business days"], n_results=2))
            r = ok(await call(c, "retrieve", collection="docs", query_texts=["rollback VERSION"], n_results=3,
                              where_document={"$contains": "make"}))
            upd = ok(await call(c, "update", collection="docs", ids=["faq"], metadatas=[{"kind": "help"}]))
            after_update = ok(await call(c, "get", collection="docs", ids=["faq"]))
            fork = ok(await call(c, "fork", name="docs", new_name="docs-exp"))
            dele = ok(await call(c, "delete", collection="docs-exp", where={"kind": "inv"}))
            counts = [x["count"] for x in ok(await call(c, "list_collections"))["collections"]]
            mod = ok(await call(c, "modify_collection", name="docs-exp", new_metadata={"stage": "try"}))
            gone = ok(await call(c, "delete_collection", name="docs-exp"))
            left = [x["name"] for x in ok(await call(c, "list_collections"))["collections"]]
            return listed, info, got, q, r, upd, after_update, fork, dele, counts, mod, gone, left

    listed, info, got, q, r, upd, after_update, fork, dele, counts, mod, gone, left = run(go())
    assert [(x["name"], x["count"], x["embedding_function"]) for x in listed] == [("docs", 3, "gleandb_hashing")]
    assert info["metadata"] == {"team": "ops"} and info["count"] == 3 and len(info["peek"]) == 2
    assert info["configuration"]["embedding_function"]["name"] == "gleandb_hashing"
    assert got["records"] == [{"id": "faq", "document": DOCS["faq"], "metadata": {"kind": "faq"}}]
    assert q["results"][0]["matches"][0]["id"] == "faq" and len(q["results"][0]["matches"]) == 2
    assert "distance" in q["results"][0]["matches"][0]
    matches = r["results"][0]["matches"]
    assert [m["id"] for m in matches] == ["ops"]  # the only document containing "make"
    assert matches[0]["ranks"]["bm25"] == 1 and matches[0]["score"] > 0
    assert upd == {"collection": "docs", "updated": 1}
    assert after_update["records"][0]["metadata"] == {"kind": "help"}
    assert fork["name"] == "docs-exp" and fork["count"] == 3
    assert dele["deleted"] == 1 and counts == [3, 2]  # the fork's delete does not touch the source
    assert mod["metadata"] == {"stage": "try"}
    assert gone == {"deleted": "docs-exp"} and left == ["docs"]


def test_grep_returns_matching_lines_with_numbers(backend):
    async def go():
        async with _session(backend) as c:
            await _seed(c)
            a = ok(await call(c, "grep", collection="docs", pattern=r"v[0-9]+\.[0-9]+"))
            b = ok(await call(c, "grep", collection="docs", pattern="REFUNDS", ignore_case=True))
            n = ok(await call(c, "grep", collection="docs", pattern="REFUNDS"))
            w = ok(await call(c, "grep", collection="docs", pattern="[0-9]+", where={"kind": "inv"}, max_lines=2))
            return a, b, n, w

    a, b, n, w = run(go())
    assert a["matches"] == [{"id": "ops", "metadata": {"kind": "ops"},
                             "lines": [{"line": 2, "text": "Rollback: make rollback VERSION=v1.4.2"}]}]
    assert a["text"] == "ops:2:Rollback: make rollback VERSION=v1.4.2"
    assert b["text"] == "faq:1:How do refunds work?\nfaq:2:Refunds take 5 business days."
    assert n["documents"] == 0 and n["matches"] == []
    # three numbered lines in the invoice, two shown
    assert w["lines"] == 3 and [x["line"] for x in w["matches"][0]["lines"]] == [1, 2] and w["truncated"]


def test_context_is_packed_with_citations(backend):
    async def go():
        async with _session(backend) as c:
            await _seed(c)
            return ok(await call(c, "context", collection="docs", question="how long do refunds take", top_n=2,
                                 max_tokens=500))

    ctx = run(go())
    assert 1 <= len(ctx["chunks"]) <= 2
    for ch in ctx["chunks"]:
        assert ctx["citations"][str(ch["citation"])] == ch["id"]
        assert f"[{ch['citation']}] {DOCS[ch['id']]}" in ctx["text"]
    assert ctx["usage"]["max_tokens"] == 500


def test_resources_list_and_describe_collections(backend):
    async def go():
        async with _session(backend) as c:
            await _seed(c)
            templates = [t.uri_template for t in (await c.list_resource_templates()).resource_templates]
            static = [str(r.uri) for r in (await c.list_resources()).resources]
            lst = json.loads((await c.read_resource("gleandb://collections")).contents[0].text)
            one = json.loads((await c.read_resource("gleandb://collections/docs")).contents[0].text)
            return templates, static, lst, one

    templates, static, lst, one = run(go())
    assert "gleandb://collections/{name}" in templates and "gleandb://collections" in static
    assert [(x["name"], x["count"]) for x in lst] == [("docs", 3)]
    assert one["count"] == 3 and one["metadata"] == {"team": "ops"} and len(one["peek"]) == 3
    assert one["configuration"]["hnsw"]["space"]


def test_bad_calls_are_tool_errors_that_change_nothing(backend):
    async def go():
        async with _session(backend) as c:
            await _seed(c)
            errs = {
                "unknown collection": error(await call(c, "query", collection="nope", query_texts=["x"])),
                "bad filter": error(await call(c, "get", collection="docs", where={"kind": {"$around": 1}})),
                "bad regex": error(await call(c, "grep", collection="docs", pattern="(unclosed")),
                "look-around": error(await call(c, "grep", collection="docs", pattern="a(?=b)")),
                "duplicate id": error(await call(c, "add", collection="docs", ids=["inv"], documents=["again"])),
                "ids vs documents": error(await call(c, "add", collection="docs", ids=["p", "q"], documents=["one"])),
                "bad metadata": error(await call(c, "add", collection="docs", ids=["m"], documents=["d"],
                                                 metadatas=[{"nested": {"no": 1}}])),
                "schema": error(await call(c, "get", collection="docs", limit=0)),
                "wrong type": error(await call(c, "retrieve", collection="docs", query_texts="not a list")),
                "missing update id": error(await call(c, "update", collection="docs", ids=["ghost"],
                                                      documents=["x"])),
                "update lengths": error(await call(c, "update", collection="docs", ids=["inv", "faq"],
                                                   documents=["x"])),
                "unknown ef": error(await call(c, "create_collection", name="other",
                                               configuration={"embedding_function": {"name": "nope"}})),
                "exists": error(await call(c, "create_collection", name="docs")),
            }
            after = ok(await call(c, "collection_info", name="docs", peek=10))
            names = [x["name"] for x in ok(await call(c, "list_collections"))["collections"]]
            return errs, after, names

    errs, after, names = run(go())
    assert "'nope' does not exist" in errs["unknown collection"]
    assert "$around" in errs["bad filter"]
    assert "(unclosed" in errs["bad regex"] and "missing )" in errs["bad regex"]
    assert "look-around" in errs["look-around"]
    assert "['inv']" in errs["duplicate id"] and "nothing was written" in errs["duplicate id"]
    assert "2 ids for 1 documents" in errs["ids vs documents"]
    assert "{'no': 1}" in errs["bad metadata"]
    assert "limit" in errs["schema"]
    assert "query_texts" in errs["wrong type"]
    assert "ghost" in errs["missing update id"]
    assert "1 documents for 2 ids" in errs["update lengths"]
    assert "'nope'" in errs["unknown ef"] and "gleandb_hashing" in errs["unknown ef"]
    assert "docs" in errs["exists"]
    assert after["count"] == 3 and {p["id"]: p["document"] for p in after["peek"]} == DOCS
    assert names == ["docs"]


def test_stdio_glean_mcp(tmp_path):
    """`glean mcp --path DIR` as a subprocess, through the SDK's stdio client; what it wrote is
    in the store afterwards."""
    path = str(tmp_path / "data")

    async def go():
        async with Client(stdio_params(path)) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            await _seed(c)
            hits = ok(await call(c, "retrieve", collection="docs", query_texts=["invoice total"], n_results=1))
            bad = error(await call(c, "grep", collection="docs", pattern="("))
            still = ok(await call(c, "list_collections"))  # the server survived the bad call
            return names, hits, bad, still

    names, hits, bad, still = run(go())
    assert CORE_TOOLS <= names
    assert hits["results"][0]["matches"][0]["id"] == "inv"
    assert "Regex" in bad or "regex" in bad
    assert still["collections"][0]["count"] == 3
    client = gleandb.PersistentClient(path)
    try:
        assert sorted(client.get_collection("docs").get()["ids"]) == sorted(DOCS)
    finally:
        client.close()


def test_context_reranks_under_the_configured_policy(tmp_path):
    """`context` with an LLM re-ranker (the fake chat server): allowed by GLEAN_RERANK_BASE_URLS,
    keyed from the server's environment; an endpoint outside the policy is a tool error."""
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from fake_llm import FakeLLM

    fake = FakeLLM().start()
    try:
        params = stdio_params(str(tmp_path / "data"))
        params.env = {"GLEAN_RERANK_BASE_URLS": fake.openai_url, "OPENAI_API_KEY": "sk-local-key"}
        spec = {"type": "llm", "model": "m", "base_url": fake.openai_url, "batch_size": 3}

        async def go():
            async with Client(params) as c:
                await _seed(c)
                ranked = ok(await call(c, "context", collection="docs", question="how do refunds work", top_n=3,
                                       reranker=spec))
                refused = error(await call(c, "context", collection="docs", question="refunds",
                                           reranker={**spec, "base_url": "http://127.0.0.1:9/v1"}))
                return ranked, refused

        ranked, refused = run(go())
    finally:
        fake.stop()
    scores = [ch["rerank_score"] for ch in ranked["chunks"]]
    assert ranked["chunks"][0]["id"] == "faq" and all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert fake.requests and all(r.headers["authorization"] == "Bearer sk-local-key" for r in fake.requests)
    assert "127.0.0.1:9" in refused


HOLDER = """
import sys, gleandb
c = gleandb.PersistentClient(sys.argv[1])
print("READY", flush=True)
sys.stdin.readline()
"""


def test_glean_mcp_on_a_store_another_process_holds_is_one_line(tmp_path):
    import subprocess
    import sys

    store = str(tmp_path / "held")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, store], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "READY"
        r = subprocess.run([sys.executable, "-m", "gleandb.cli.main", "mcp", "--path", store], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glean mcp: The gleandb store at") and "already open" in lines[0]


def test_an_unexpected_failure_is_a_tool_error_too(backend):
    """An embedding function that breaks (a bug, a dead provider) gives a tool error naming the
    exception; the server keeps answering and nothing was written."""
    from gleandb.embeddings.functions import register_embedding_function

    @register_embedding_function
    class Broken:
        def __init__(self) -> None:
            pass

        @staticmethod
        def name() -> str:
            return "test_broken_mcp"

        def get_config(self) -> dict:
            return {}

        @staticmethod
        def build_from_config(config: dict) -> "Broken":
            return Broken()

        def __call__(self, input):
            raise RuntimeError("provider is down")

    async def go():
        async with _session(backend) as c:
            ok(await call(c, "create_collection", name="fragile",
                          configuration={"embedding_function": {"name": "test_broken_mcp", "config": {}}}))
            err = error(await call(c, "add", collection="fragile", ids=["a"], documents=["text"]))
            info = ok(await call(c, "collection_info", name="fragile"))
            return err, info

    err, info = run(go())
    assert "RuntimeError: provider is down" in err
    assert info["count"] == 0
