"""The labeling page's JSON API under ``glean run``'s app (TestClient) and ``glean label``'s CLI."""

from __future__ import annotations

import base64
import json

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from gleandb.cli.main import main as glean  # noqa: E402
from gleandb.evals.labels import parse_golden  # noqa: E402
from gleandb.server.app import create_app  # noqa: E402
from gleandb.server.config import ServerSettings  # noqa: E402

from label_support import GOLDEN, make_store, write_golden  # noqa: E402

API = "/ui/label/api/notes"


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "data"
    ids = make_store(path)
    return path, ids


def _app(path, **settings):
    return TestClient(create_app(str(path), ServerSettings(path=str(path), **settings)))


def _load(c, headers=None):
    r = c.post(API + "/import", json={"queries": GOLDEN}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_page_and_candidates(store):
    path, ids = store
    with _app(path) as c:
        page = c.get("/ui/label")
        assert page.status_code == 200 and "gleandb · labeling" in page.text and "<script>" in page.text
        assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
        assert c.get("/ui/label/api/collections").json() == {"collections": ["notes"]}
        assert _load(c) == {"added": 3, "skipped": 0}
        qs = c.get(API + "/queries", params={"labeler": "ann"}).json()["queries"]
        assert [q["query_id"] for q in qs] == ["q-001", "q-002", "q-003"]
        a = c.get(API + "/queries/q-001", params={"labeler": "ann"}).json()
        got = [x["id"] for x in a["candidates"]]
        assert len(got) == len(set(got)) and set(got) <= set(ids)
        assert "try-0" in got  # the generated query's source document is always in the pool
        assert all(set(x) == {"id", "document", "metadata", "grade"} for x in a["candidates"])  # no source shown
        # pooled from dense, bm25 and hybrid: more than one configuration's top 10
        import gleandb

        col = gleandb.PersistentClient(str(path)).get_collection("notes")
        pooled = set()
        for mode in ("dense", "bm25", "hybrid"):
            pooled.update(col.retrieve(query_texts=[a["query"]], mode=mode, n_results=10)["ids"][0])
        assert set(got) == pooled | {"try-0"}
        # stable for one labeler across requests, shuffled differently for another
        again = [x["id"] for x in c.get(API + "/queries/q-001", params={"labeler": "ann"}).json()["candidates"]]
        bob = [x["id"] for x in c.get(API + "/queries/q-001", params={"labeler": "bob"}).json()["candidates"]]
        assert again == got and sorted(bob) == sorted(got) and bob != got


def test_labels_from_two_labelers_survive_reopen_and_export(store, tmp_path):
    path, _ = store
    with _app(path) as c:
        _load(c)
        for who, grades in (("ann", [3, 1, 0, 2]), ("bob", [3, 1, 1, 2])):
            cands = c.get(API + "/queries/q-001", params={"labeler": who}).json()["candidates"]
            by_id = sorted(x["id"] for x in cands if x["id"] != "try-0")[:4]
            for d, g in zip(by_id, grades):
                r = c.post(API + "/labels", json={"query_id": "q-001", "doc_id": d, "grade": g, "labeler": who})
                assert r.status_code == 200 and r.json()["grade"] == g
        r = c.post(API + "/queries", json={"action": "edit", "query_id": "q-002", "text": "lambda expressions",
                                           "labeler": "ann"})
        assert r.json()["status"] == "edited"
        assert c.post(API + "/queries", json={"action": "reject", "query_id": "q-003", "labeler": "bob"}).json()["status"] == "rejected"
        new = c.post(API + "/queries", json={"action": "add", "text": "how to raise an error", "labeler": "bob"}).json()
        assert new["source"] == "human" and new["status"] == "accepted"
    with _app(path) as c:  # a new server process on the same store
        p = c.get(API + "/progress").json()
        assert p["queries"] == 4 and p["pairs_labeled"] == 4 and p["pairs_labeled_twice"] == 4
        assert p["per_labeler"] == {"ann": 4, "bob": 4}
        assert p["agreement"]["pairs"][0]["kappa"] == pytest.approx(_kappa([3, 1, 0, 2], [3, 1, 1, 2]), abs=1e-4)
        mine = c.get(API + "/queries/q-001", params={"labeler": "ann"}).json()["candidates"]
        assert sorted(x["grade"] for x in mine if x["grade"] is not None) == [0, 1, 2, 3]
        text = c.get(API + "/export").text
    lines = parse_golden(text)
    by = {r["query_id"]: r for r in lines}
    assert by["q-001"]["source"] == "labeled" and set(by["q-001"]["provenance"]["labelers"]) == {"ann", "bob"}
    # per doc the mean of (ann, bob) rounded half up; try-0 nobody labeled keeps its generated 3
    assert by["q-001"]["relevant"] == {**dict(zip(by_id, [3, 1, 1, 2])), "try-0": 3}
    assert by["q-002"]["query"] == "lambda expressions"
    assert by["q-002"]["provenance"]["original_query"] == "anonymous functions"
    assert by["q-003"]["status"] == "rejected"
    # the CLI writes the same export without serving
    out = tmp_path / "out.jsonl"
    assert glean(["label", "notes", "--path", str(path), "--export", str(out)]) == 0
    assert parse_golden(out.read_text()) == lines


def _kappa(a, b):
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    pe = sum(a.count(g) * b.count(g) for g in range(4)) / n / n
    return (po - pe) / (1 - pe)


@pytest.mark.parametrize("body, status, message", [
    ({"query_id": "q-001", "doc_id": "try-0", "grade": 7, "labeler": "ann"}, 400, "grade must be one of 0, 1, 2, 3, got 7"),
    ({"query_id": "q-001", "doc_id": "try-0", "grade": "3", "labeler": "ann"}, 400, "got '3'"),
    ({"query_id": "q-404", "doc_id": "try-0", "grade": 2, "labeler": "ann"}, 404, "unknown query_id 'q-404'"),
    ({"query_id": "q-001", "doc_id": "no-such-doc", "grade": 2, "labeler": "ann"}, 400, "doc_id 'no-such-doc' is not in the collection"),
    ({"query_id": "q-001", "doc_id": "try-0", "grade": 2}, 400, "labeler must be a non-empty string"),
    ([1, 2], 400, "expected a JSON object body, got list"),
])
def test_bad_labels_get_a_clear_4xx_and_change_nothing(store, body, status, message):
    path, _ = store
    with _app(path) as c:
        _load(c)
        assert c.post(API + "/labels", json={"query_id": "q-001", "doc_id": "try-1", "grade": 1, "labeler": "ann"}).status_code == 200
        before = c.get(API + "/export").text
        r = c.post(API + "/labels", json=body)
        assert r.status_code == status and message in r.json()["message"], r.text
        assert c.get(API + "/export").text == before
    with _app(path) as c:
        assert c.get(API + "/export").text == before


def test_bad_requests_name_the_problem(store):
    path, _ = store
    with _app(path) as c:
        _load(c)
        r = c.get("/ui/label/api/missing/queries")
        assert r.status_code == 404 and "'missing'" in r.json()["message"]
        r = c.get(API + "/queries/q-404", params={"labeler": "ann"})
        assert r.status_code == 404 and "q-404" in r.json()["message"]
        r = c.get(API + "/queries/q-001", params={"labeler": "ann", "k": "0"})
        assert r.status_code == 400 and "k must be" in r.json()["message"]
        r = c.post(API + "/queries", json={"action": "delete", "query_id": "q-001", "labeler": "ann"})
        assert r.status_code == 400 and "'delete'" in r.json()["message"]
        r = c.post(API + "/labels", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "not JSON" in r.json()["message"]
        bad = [{"query_id": "q-9", "query": "x", "relevant": {"ghost-1": 2}}]
        r = c.post(API + "/import", json={"queries": bad})
        assert r.status_code == 400 and "'ghost-1'" in r.json()["message"]
        assert c.get(API + "/progress").json()["queries"] == 3


def test_auth_protects_the_api_and_names_the_labeler(store):
    path, _ = store
    basic = {"Authorization": "Basic " + base64.b64encode(b"carol:secret").decode()}
    token = {"Authorization": "Bearer tok"}
    with _app(path, auth_tokens=["tok"], auth_basic=["carol:secret"]) as c:
        assert c.get("/ui/label").status_code == 200  # static page, no data
        assert c.get("/ui/label/api/collections").status_code == 401
        assert c.post(API + "/import", json={"queries": GOLDEN}).status_code == 401
        _load(c, token)
        assert c.get(API + "/progress", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/ui/label/api/whoami", headers=basic).json() == {"user": "carol"}
        assert c.get("/ui/label/api/whoami", headers=token).json() == {"user": None}
        # basic auth: the authenticated user is the labeler, whatever name the page sends
        r = c.post(API + "/labels", json={"query_id": "q-001", "doc_id": "try-0", "grade": 3, "labeler": "mallory"},
                   headers=basic)
        assert r.status_code == 200 and r.json()["labeler"] == "carol"
        # a shared token: the page's name
        r = c.post(API + "/labels", json={"query_id": "q-001", "doc_id": "try-0", "grade": 2, "labeler": "dan"},
                   headers=token)
        assert r.json()["labeler"] == "dan"
        assert c.get(API + "/progress", headers=token).json()["per_labeler"] == {"carol": 1, "dan": 1}


def test_cli_loads_a_golden_file_and_refuses_unknown_ids(store, tmp_path, capsys):
    path, _ = store
    golden = write_golden(tmp_path / "golden.jsonl")
    assert glean(["label", "notes", "--path", str(path), "--golden", str(golden), "--export", str(tmp_path / "o.jsonl")]) == 0
    assert "3 queries loaded" in capsys.readouterr().out
    assert [r["query_id"] for r in parse_golden((tmp_path / "o.jsonl").read_text())] == ["q-001", "q-002", "q-003"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query_id": "q-x", "query": "x", "relevant": {"nope-1": 3}}) + "\n")
    assert glean(["label", "notes", "--path", str(path), "--golden", str(bad), "--export", str(tmp_path / "o2.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "'nope-1'" in err and "not in collection 'notes'" in err
    assert glean(["label", "missing", "--path", str(path), "--export", str(tmp_path / "o3.jsonl")]) == 2


def test_a_tenant_bound_token_reaches_only_its_tenant(store):
    path, _ = store
    other = {"Authorization": "Bearer other"}
    with _app(path, auth_tokens=["tok", {"token": "other", "tenant": "team-b"}]) as c:
        r = c.get(API + "/progress", headers=other)
        assert r.status_code == 403 and "tenant" in r.json()["message"]
        assert c.get("/ui/label/api/collections", headers=other).status_code == 403
        assert c.post(API + "/labels", json={"query_id": "q-001", "doc_id": "try-0", "grade": 3, "labeler": "x"},
                      headers=other).status_code == 403
        assert c.get(API + "/progress", headers={"Authorization": "Bearer tok"}).status_code == 200
