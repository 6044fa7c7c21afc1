"""Where a store lives, from one string; bad locations and options are refused by name."""

import pytest

import gleandb
from gleandb.api.errors import InvalidArgumentError
from gleandb.storage.local import LocalStorage
from gleandb.storage.s3 import S3Storage, parse_s3_url
from gleandb.storage.urls import normalize, open_storage


def test_paths_and_file_urls_are_local(tmp_path):
    assert isinstance(open_storage(str(tmp_path / "a")), LocalStorage)
    s = open_storage(f"file://{tmp_path}/b")
    assert isinstance(s, LocalStorage) and s.root == str(tmp_path / "b")
    assert normalize(f"file://{tmp_path}/b") == normalize(str(tmp_path / "b"))


def test_s3_urls_carry_bucket_prefix_and_options():
    assert parse_s3_url("s3://bkt/a/b/?region=eu-west-1") == ("bkt", "a/b/", {"region": "eu-west-1"})
    assert parse_s3_url("s3://bkt") == ("bkt", "", {})
    s = open_storage("s3://bkt/p?endpoint=http://127.0.0.1:9&region=eu-west-1")
    assert isinstance(s, S3Storage) and (s.bucket, s.prefix, s.region) == ("bkt", "p/", "eu-west-1")
    assert s.url == "s3://bkt/p" and s.describe("k") == "s3://bkt/p/k"


@pytest.mark.parametrize("location, options, message", [
    ("s3://", {}, "expected s3://bucket/prefix"),
    ("s3://b/p?secret=x", {}, "unknown option(s) ['secret']"),
    ("gs://b/p", {}, "expected a directory, file://... or s3://bucket/prefix"),
    ("s3://b/p", {"endpont": "x"}, "unknown storage option(s) ['endpont']"),
    ("s3://b/p", {"timeout": 0}, "timeout must be a number > 0, got 0"),
    ("s3://b/p", {"retries": -1}, "retries must be an integer >= 0, got -1"),
    ("s3://b/p", {"endpoint": "http://minio.example:9000"}, "is plain http"),
])
def test_bad_locations_and_options_name_what_is_wrong(location, options, message):
    with pytest.raises(InvalidArgumentError) as e:
        open_storage(location, **options)
    assert message in str(e.value)


def test_plain_http_is_allowed_when_asked():
    s = open_storage("s3://b/p?allow_http=true", endpoint="http://minio.example:9000")
    assert s.endpoint == "http://minio.example:9000"


def test_a_bad_lease_option_is_refused_before_anything_is_opened():
    with pytest.raises(InvalidArgumentError, match="lease_ttl must be a number of seconds > 0, got 0"):
        gleandb.PersistentClient("s3://b/p", storage_options={"endpoint": "http://127.0.0.1:9", "lease_ttl": 0})
