"""Configs: presets, validation with clear errors, Search placeholders."""

from __future__ import annotations

import pytest

from gleandb import Search
from gleandb.api.search import Knn
from gleandb.evals import Config
from gleandb.evals.configs import QUERY, preset, resolve, search_for


def test_presets_and_names():
    cs = resolve(["default", "dense", "bm25", "hybrid", "hybrid-weighted"])
    assert [c.name for c in cs] == ["default", "dense", "bm25", "hybrid", "hybrid-weighted"]
    assert cs[0].retrieve_args == {} and cs[0].kind == "retrieve"
    assert cs[4].retrieve_args["weights"] == {"dense": 1.0, "bm25": 0.25}
    c = Config(mode="hybrid", fusion="weighted", weights=[1, 0.3])
    assert c.retrieve_args["weights"] == {"dense": 1.0, "bm25": 0.3}
    assert c.name == "hybrid-weighted-1:0.3"
    with pytest.raises(ValueError, match="two configs share the name 'dense'"):
        resolve(["dense", Config("dense", mode="bm25")])


@pytest.mark.parametrize("make, words", [
    (lambda: preset("dens"), ["unknown config 'dens'", "default, dense, bm25, hybrid, hybrid-weighted, rerank"]),
    (lambda: Config(mode="sparse"), ["unknown mode 'sparse'", "hybrid, dense, bm25"]),
    (lambda: Config(fusion="max"), ["unknown fusion 'max'", "rrf"]),
    (lambda: Config(weights=[1, 2, 3]), ["[dense, bm25]"]),
    (lambda: Config(weights={"dense": -1}), ["weights['dense']", "-1"]),
    (lambda: Config(n_results=3), ["unknown argument 'n_results'", "mode"]),
    (lambda: Config(candidates=0), ["candidates", "0"]),
    (lambda: Config(top_n=5), ["top_n=5", "reranker is None"]),
    (lambda: Config(reranker="gpt"), ["reranker must have a rerank"]),
    (lambda: preset("rerank"), ["needs a re-ranker", "--llm-model"]),
    (lambda: resolve([]), ["non-empty list"]),
    (lambda: resolve([3]), ["each config must be"]),
])
def test_bad_configs_say_what_is_valid(make, words):
    with pytest.raises(ValueError) as e:
        make()
    for w in words:
        assert w in str(e.value)


def test_search_placeholder_and_callable():
    s = Search().rank(Knn(query=QUERY, limit=20)).limit(5)
    c = Config("knn", search=s)
    wire = search_for(c, "how do threads stop")
    assert wire["rank"]["$knn"]["query"] == "how do threads stop"
    assert s.to_dict()["rank"]["$knn"]["query"] == QUERY  # the template is not modified
    c2 = Config("fn", search=lambda q: Search().rank(Knn(query=q)))
    assert c2.kind == "search" and search_for(c2, "x").to_dict()["rank"]["$knn"]["query"] == "x"
    with pytest.raises(ValueError, match="cannot be combined"):
        Config(search=s, mode="dense")
