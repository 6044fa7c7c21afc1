"""Storage on an S3-compatible object store (AWS S3, MinIO, R2, GCS's XML API), via obstore.

Why these rules:

- Every object is written whole by one PUT, which S3 makes atomic: readers see the old object
  or the new one, never a mix. Commit points (manifests, catalog records, WAL groups) are
  created with ``If-None-Match: *`` (:meth:`S3Storage.put_if_absent`), so of two writers that
  race for the same name exactly one wins and nothing is overwritten in place.
- Object stores cannot append. A log (``open_log``: the catalog log, a fork's WAL tail) is a
  folder of numbered parts ``<key>/~log-<n>``, one per ``sync``, each created with
  ``If-None-Match`` so a second writer of the same log fails instead of interleaving. ``list``
  shows the log as the one key ``<key>``; ``read_log`` concatenates its parts. The engine's WAL
  writes one object per group instead (``gleandb.engine.wal``).
- Conditional creates are retried here, not by the client library: a create whose answer was
  lost (a 500 after the write landed, a timeout) is retried, and a 412 on a retry is resolved by
  reading the object back: our bytes mean our write landed. A 412 on the first try is a loss.
- ``fence`` (the writer's lease check, ``gleandb.storage.lease``) runs before every write and
  delete, so a writer that cannot prove it holds the store writes nothing.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from typing import Callable
from urllib.parse import parse_qs, urlparse

from gleandb.errors import InvalidArgumentError, ObjectStoreUnavailableError, WriterFencedError
from gleandb.storage.base import KeyNotFound, LogWriter, Storage, StorageError

_PART = "/~log-"
_PART_RE = re.compile(r"^(.*)/~log-(\d{10})$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def parse_s3_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``s3://bucket/prefix?endpoint=...&region=...&allow_http=true`` -> (bucket, prefix, options).
    Credentials never go in the URL (it is logged and shown): they come from the environment
    or from explicit arguments."""
    u = urlparse(url)
    if u.scheme != "s3" or not u.netloc:
        raise InvalidArgumentError(f"storage url {url!r}: expected s3://bucket/prefix")
    options = {k: v[-1] for k, v in parse_qs(u.query).items()}
    unknown = set(options) - {"endpoint", "region", "allow_http"}
    if unknown:
        raise InvalidArgumentError(f"storage url {url!r}: unknown option(s) {sorted(unknown)}; "
                                   f"known: endpoint, region, allow_http")
    prefix = u.path.strip("/")
    return u.netloc, (prefix + "/" if prefix else ""), options


def _looks_like_log(key: str) -> bool:
    """Keys the engine opens as logs (catalog ``log-<n>``, ``*.log``): only these can have parts,
    so only these cost a LIST on delete or a missed GET."""
    name = key.rsplit("/", 1)[-1]
    return name.startswith("log-") or name.endswith(".log")


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class _ObjectLog(LogWriter):
    """A log as numbered objects: ``append`` buffers, ``sync`` creates the next part."""

    def __init__(self, storage: "S3Storage", key: str):
        self._s = storage
        self._key = key
        self._n = 0
        self._synced = 0  # bytes in parts already created
        self._buf = bytearray()
        self._broken: str | None = None
        if not storage.put_if_absent(self._part(0), b""):  # part 0 marks the log as created
            raise WriterFencedError(
                f"log {storage.describe(key)} exists already: another writer holds the store")

    def _part(self, n: int) -> str:
        return f"{self._key}{_PART}{n:010d}"

    def append(self, data: bytes) -> None:
        if self._broken:
            raise ObjectStoreUnavailableError(self._broken)
        self._buf += data

    def sync(self) -> None:
        if not self._buf:
            return
        if self._broken:
            raise ObjectStoreUnavailableError(self._broken)
        key = self._part(self._n + 1)
        data = bytes(self._buf)
        try:
            created = self._s.put_if_absent(key, data)
        except ObjectStoreUnavailableError:
            # its outcome may be unknown: take the part back, or stop using this log
            try:
                self._s.delete(key)
            except Exception:
                self._broken = (f"a write to {self._s.describe(key)} may or may not have been applied and "
                                f"could not be undone; reopen the store to continue")
            raise
        if not created:
            raise WriterFencedError(
                f"{self._s.describe(key)} was created by another writer (conditional create refused): "
                f"another writer holds the store; this write was not applied")
        self._n += 1
        self._synced += len(data)
        self._buf.clear()

    def truncate(self, size: int) -> None:
        keep = max(0, size - self._synced)
        del self._buf[keep:]

    def close(self) -> None:
        self._buf.clear()

    @property
    def size(self) -> int:
        return self._synced + len(self._buf)


class S3Storage(Storage):
    """Keys map to ``<prefix><key>`` in ``bucket``."""

    appendable = False

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        allow_http: bool | None = None,
        timeout: float = 30.0,
        retries: int = 3,
    ):
        try:
            from obstore.store import S3Store
        except ImportError:  # pragma: no cover - depends on the install
            raise InvalidArgumentError(
                "a store on s3:// needs obstore, the S3 client gleandb uses: pip install 'gleandb[s3]'") from None

        env = os.environ
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.endpoint = endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        self.region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        if allow_http is None:
            host = urlparse(self.endpoint).hostname if self.endpoint else None
            allow_http = _truthy(env.get("GLEANDB_S3_ALLOW_HTTP", "")) or host in _LOOPBACK
        if self.endpoint and self.endpoint.startswith("http://") and not allow_http:
            raise InvalidArgumentError(
                f"S3 endpoint {self.endpoint!r} is plain http: pass allow_http=True (or ?allow_http=true, "
                f"GLEANDB_S3_ALLOW_HTTP=1) to send data unencrypted; loopback endpoints are allowed")
        self.retries = int(retries)
        config: dict = {"region": self.region}
        if self.endpoint:
            config["endpoint"] = self.endpoint
            config["virtual_hosted_style_request"] = False
        key_id = access_key_id or env.get("AWS_ACCESS_KEY_ID")
        secret = secret_access_key or env.get("AWS_SECRET_ACCESS_KEY")
        token = session_token or env.get("AWS_SESSION_TOKEN")
        if key_id and secret:
            config["access_key_id"] = key_id
            config["secret_access_key"] = secret
            if token:
                config["session_token"] = token
        client = {"allow_http": bool(allow_http), "timeout": f"{int(timeout * 1000)}ms",
                  "connect_timeout": f"{int(min(timeout, 10) * 1000)}ms"}
        retry = {"max_retries": self.retries, "retry_timeout": timedelta(seconds=timeout * 2),
                 "backoff": {"init_backoff": timedelta(milliseconds=50), "max_backoff": timedelta(seconds=2),
                             "base": 2.0}}
        # reads, plain puts and deletes: the library retries them (all idempotent)
        self._store = S3Store(bucket, config=config, client_options=client, retry_config=retry)
        # conditional writes: retried here, where a 412 after a lost answer can be resolved
        self._cstore = S3Store(bucket, config=config, client_options=client,
                               retry_config={**retry, "max_retries": 0})
        self.fence: Callable[[], None] | None = None

    # ----------------------------------------------------------------- helpers

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _path(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"invalid storage key {key!r}")
        return self.prefix + key

    def _check_fence(self) -> None:
        if self.fence is not None:
            self.fence()

    def _check_fence_after(self, key: str) -> None:
        """Run the fence again once a write returned: acknowledged only if it landed while this
        writer still held the lease, hence before any other writer could take over and read
        the store (a late write of a fenced writer is never acknowledged)."""
        if self.fence is None:
            return
        try:
            self.fence()
        except WriterFencedError as e:
            raise WriterFencedError(
                f"{self.describe(key)} was written, but this writer lost its lease meanwhile, so the write "
                f"is not acknowledged (it may or may not take effect): {e}") from None

    def _unavailable(self, what: str, key: str, exc: BaseException) -> ObjectStoreUnavailableError:
        return ObjectStoreUnavailableError(
            f"object store request failed: {what} {self.describe(key)}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300] if str(exc) else ''}")

    def _call(self, what: str, key: str, fn):
        import obstore.exceptions as oe

        try:
            return fn()
        except FileNotFoundError:
            raise KeyNotFound(key) from None
        except (oe.BaseError, OSError, TimeoutError) as e:
            raise self._unavailable(what, key, e) from e

    # ------------------------------------------------------------------- reads

    def get(self, key: str) -> bytes:
        import obstore

        try:
            return self._call("GET", key, lambda: bytes(obstore.get(self._store, self._path(key)).bytes()))
        except KeyNotFound:
            if _looks_like_log(key):
                return self.read_log(key)
            raise

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        """The object and its ETag (for a later ``put_if_match``)."""
        import obstore

        def go():
            r = obstore.get(self._store, self._path(key))
            return bytes(r.bytes()), r.meta["e_tag"]

        return self._call("GET", key, go)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        import obstore

        if length <= 0:
            return b""
        try:
            return self._call("GET (range)", key, lambda: bytes(
                obstore.get_range(self._store, self._path(key), start=start, end=start + length)))
        except ObjectStoreUnavailableError:
            end = min(self.size_of(key), start + length)  # a range past the end: read what is there
            if start >= end:
                return b""
            return self._call("GET (range)", key, lambda: bytes(
                obstore.get_range(self._store, self._path(key), start=start, end=end)))

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
            return True
        except KeyNotFound:
            return _looks_like_log(key) and bool(self._parts(key))

    def head(self, key: str) -> dict:
        """``{"size": int, "etag": str}`` of an object (one HEAD): how a reader notices that an
        object changed without reading it."""
        meta = self._head(key)
        return {"size": int(meta["size"]), "etag": meta.get("e_tag") or ""}

    def _head(self, key: str) -> dict:
        import obstore

        return self._call("HEAD", key, lambda: obstore.head(self._store, self._path(key)))

    def size_of(self, key: str) -> int:
        try:
            return int(self._head(key)["size"])
        except KeyNotFound:
            parts = self._parts(key, sizes=True)
            if not parts:
                raise
            return sum(size for _k, size in parts)

    def _raw_list(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object under ``prefix`` (a folder), log parts included."""
        import obstore

        full = self._path(prefix) if prefix else self.prefix
        folder = full.rsplit("/", 1)[0] if "/" in full else ""  # the library lists whole folders

        def go():
            out = []
            for chunk in obstore.list(self._store, prefix=folder or None):
                for meta in chunk:
                    path = meta["path"]
                    if path.startswith(full):
                        out.append((path[len(self.prefix):], int(meta["size"])))
            return out

        return self._call("LIST", prefix, go)

    def list(self, prefix: str) -> list[str]:
        keys = set()
        for key, _size in self._raw_list(prefix):
            m = _PART_RE.match(key)
            keys.add(m.group(1) if m else key)
        return sorted(keys)

    def _parts(self, key: str, sizes: bool = False) -> list:
        """The part keys of log ``key``, oldest first (with sizes: (key, size) pairs)."""
        out = sorted((k, n) for k, n in self._raw_list(key + _PART) if _PART_RE.match(k))
        return out if sizes else [k for k, _n in out]

    # ------------------------------------------------------------------ writes

    def put(self, key: str, data: bytes) -> None:
        import obstore

        self._check_fence()
        self._call("PUT", key, lambda: obstore.put(self._store, self._path(key), bytes(data)))
        self._check_fence_after(key)

    def _conditional(self, key: str, data: bytes, mode) -> str | None:
        """PUT with a precondition, retried here: the new ETag, or None when the precondition
        failed on the first try (or on a retry, with bytes that are not ours)."""
        import obstore
        import obstore.exceptions as oe

        path = self._path(key)
        data = bytes(data)
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(2.0, 0.05 * 2 ** attempt))
            try:
                result = obstore.put(self._cstore, path, data, mode=mode)
                return (result or {}).get("e_tag") or ""
            except (oe.AlreadyExistsError, oe.PreconditionError, FileNotFoundError):  # If-Match on a missing key: 404
                if attempt == 0:
                    return None
                # an earlier try may have landed with its answer lost: are these bytes ours?
                try:
                    current, etag = self.get_with_etag(key)
                except KeyNotFound:
                    return None
                return etag if current == data else None
            except (oe.BaseError, OSError, TimeoutError) as e:
                last = e
        raise self._unavailable("conditional PUT", key, last)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._check_fence()
        created = self._conditional(key, data, "create") is not None
        if created:
            self._check_fence_after(key)
        return created

    def create(self, key: str, data: bytes, fenced: bool = True) -> str | None:
        """``put_if_absent`` returning the new ETag (None when ``key`` exists)."""
        if fenced:
            self._check_fence()
        return self._conditional(key, data, "create")

    def put_if_match(self, key: str, data: bytes, etag: str, fenced: bool = True) -> str | None:
        """Replace ``key`` only if its ETag is still ``etag`` (``If-Match``): the new ETag, or None."""
        if fenced:
            self._check_fence()
        return self._conditional(key, data, {"e_tag": etag})

    def delete(self, key: str) -> None:
        import obstore

        self._check_fence()
        parts = self._parts(key) if _looks_like_log(key) else []
        for part in parts[::-1] + [key]:  # a log's newest part first: what stays is still a log
            self._call("DELETE", part, lambda p=part: obstore.delete(self._store, self._path(p)))

    def delete_prefix(self, prefix: str) -> None:
        import obstore

        self._check_fence()
        for key, _size in self._raw_list(prefix):
            self._call("DELETE", key, lambda k=key: obstore.delete(self._store, self._path(k)))

    # -------------------------------------------------------------------- logs

    def open_log(self, key: str) -> LogWriter:
        self._check_fence()
        return _ObjectLog(self, key)

    def read_log(self, key: str) -> bytes:
        import obstore

        try:  # a WAL group is one plain object
            return self._call("GET", key, lambda: bytes(obstore.get(self._store, self._path(key)).bytes()))
        except KeyNotFound:
            parts = self._parts(key)
        if not parts:
            raise KeyNotFound(key)
        out = bytearray()
        for part in parts:
            out += self._call("GET", part, lambda p=part: bytes(obstore.get(self._store, self._path(p)).bytes()))
        return bytes(out)
