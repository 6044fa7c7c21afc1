"""The fulltext configuration over HTTP: gleandb.HttpClient sends it, glean run persists
and echoes it, and the official chromadb client reads such collections unharmed."""

import pytest

import gleandb
from gleandb.errors import InvalidArgumentError


@pytest.fixture
def http(server):
    c = gleandb.HttpClient(host="127.0.0.1", port=server.port)
    c.reset()
    yield c
    c.close()


def test_fulltext_configuration_round_trip(http, server):
    col = http.create_collection("ft1", configuration={"fulltext": {"stemmer": "english", "k1": 1.1}},
                                 embedding_function=None)
    assert col.configuration_json["fulltext"]["stemmer"] == "english"
    assert http.get_collection("ft1", embedding_function=None).configuration_json["fulltext"]["k1"] == 1.1
    with pytest.raises(InvalidArgumentError, match="stemmer"):
        http.create_collection("ft2", configuration={"fulltext": {"stemmer": "nope"}}, embedding_function=None)
    with pytest.raises(InvalidArgumentError, match="fulltext"):
        col.modify(configuration={"fulltext": {"k1": 2.0}})
    chromadb = pytest.importorskip("chromadb")
    cc = chromadb.HttpClient(host="127.0.0.1", port=server.port, settings=chromadb.Settings(anonymized_telemetry=False))
    assert cc.get_collection("ft1", embedding_function=None).name == "ft1"
