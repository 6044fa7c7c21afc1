"""Where a store lives, from one string: a directory (``./data``, ``file:///data``) or a bucket
(``s3://bucket/prefix``), so clients and ``glean run`` take one ``path`` argument for both."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

from gleandb.errors import InvalidArgumentError
from gleandb.storage.base import Storage

_S3_OPTIONS = {"endpoint", "region", "access_key_id", "secret_access_key", "session_token", "allow_http",
               "timeout", "retries"}


def is_object_store(location: str) -> bool:
    """True for ``s3://`` URLs."""
    return str(location).startswith("s3://")


def local_path(location: str) -> str:
    """The directory of a plain path or ``file://`` URL."""
    location = str(location)
    if location.startswith("file://"):
        u = urlparse(location)
        return unquote(u.path)
    return location


def normalize(location: str) -> str:
    """One name per store (engines are shared per name): a real path, or the URL itself."""
    return str(location).rstrip("/") if is_object_store(location) else os.path.realpath(local_path(location))


def open_storage(location: str, **options) -> Storage:
    """The storage at ``location``: ``LocalStorage`` for a path or ``file://`` URL, ``S3Storage``
    for ``s3://bucket/prefix[?endpoint=...&region=...&allow_http=true]``. ``options`` go to
    ``S3Storage`` (endpoint, region, credentials, allow_http, timeout, retries); the URL's
    query options win over the environment, explicit ``options`` over both."""
    if is_object_store(location):
        from gleandb.storage.s3 import S3Storage, parse_s3_url

        bucket, prefix, url_options = parse_s3_url(location)
        merged: dict = dict(url_options)
        if "allow_http" in merged:
            merged["allow_http"] = merged["allow_http"].strip().lower() in ("1", "true", "yes", "on")
        merged.update(options)
        unknown = sorted(set(merged) - _S3_OPTIONS)
        if unknown:
            raise InvalidArgumentError(f"unknown storage option(s) {unknown} for {location}; known: {sorted(_S3_OPTIONS)}")
        for name in ("timeout",):
            if name in merged and not (isinstance(merged[name], (int, float)) and merged[name] > 0):
                raise InvalidArgumentError(f"storage option {name} must be a number > 0, got {merged[name]!r}")
        if "retries" in merged and not (isinstance(merged["retries"], int) and merged["retries"] >= 0):
            raise InvalidArgumentError(f"storage option retries must be an integer >= 0, got {merged['retries']!r}")
        return S3Storage(bucket, prefix, **merged)
    if "://" in str(location) and not str(location).startswith("file://"):
        raise InvalidArgumentError(f"storage location {location!r}: expected a directory, file://... or s3://bucket/prefix")
    from gleandb.storage.local import LocalStorage

    return LocalStorage(local_path(location))
