"""One collection per git commit, each forked from an indexed ancestor's, applying only what changed.

A commit's collection is named ``code.<repo>.<sha12>`` and records ``commit``, ``parent``, ``tree``,
``repo_path`` and ``base`` (the commit it was forked from, "" when built from scratch) in its
metadata. Indexing a commit forks the nearest indexed first-parent ancestor (normally the
parent), deletes the chunks of every file ``git diff-tree -r --no-renames base commit`` reports
(one ``where={"path": {"$in": ...}}`` delete) and adds the new chunks of the added and modified
files. With no indexed ancestor (a root commit, a parent missing from a shallow clone, a first
``--rev`` on a long history) it is built from scratch, and the report says why. Chunk ids are
``<path>#<n>``, so a chain and a from-scratch build of the same commit hold the same ids and
documents; a chunk's ``commit`` is the commit that added it (a file-level blame).

A registry collection ``code.<repo>`` (no records) holds the repository's path and the branch
aliases in its metadata (``alias:<branch>`` -> sha): a branch's alias moves when the commit it
points at is indexed. Everything goes through the public client API, so any client works,
``PersistentClient`` or ``HttpClient``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from gleandb.code.cache import EmbeddingCache
from gleandb.code.chunk import chunk_file, language_of
from gleandb.code.git import CodeError, GitError, Repo
from gleandb.errors import NotFoundError

MAX_FILE_BYTES = 1 << 20
ADD_BATCH = 1000
ANCESTOR_SEARCH = 200
_INDEXABLE_MODES = {"100644", "100755"}


@dataclass
class IndexReport:
    """What indexing one commit did."""

    commit: str
    collection: str
    mode: str  # "fork", "scratch" or "exists"
    base: str = ""
    note: str = ""
    files: int = 0  # files applied: all of them from scratch, the changed ones (deleted too) in a fork
    chunks_added: int = 0
    embedded: int = 0
    reused: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    seconds: float = 0.0
    db_seconds: float = 0.0  # in the store's calls (fork, delete, add, flush, cache), not git, chunking, embedding
    aliases: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChunkChange:
    status: str  # "A" added, "M" modified, "D" deleted
    path: str
    start_line: int
    end_line: int
    symbol: str


def repo_slug(path: str) -> str:
    base = os.path.basename(os.path.normpath(path))
    if base.endswith(".git"):
        base = base[:-4]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-_")[:60]
    return slug or "repo"


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:8000]  # git's own test


class CodeIndex:
    """The code index of one repository in one store (any client)."""

    def __init__(self, client: Any, repo_path: str, embedding_function: Any = None, name: str | None = None,
                 max_file_bytes: int = MAX_FILE_BYTES, log: Callable[[str], None] | None = None,
                 create: bool = True) -> None:
        self.client = client
        self.repo = Repo(repo_path)
        self.name = f"code.{repo_slug(name or self.repo.path)}"
        self.max_file_bytes = max_file_bytes
        self.log = log or (lambda _msg: None)
        self._cache: EmbeddingCache | None = None
        self._registry = self._open_registry(create)
        self.ef = self._settle_ef(embedding_function)

    # ---------------------------------------------------------------- registry
    def _open_registry(self, create: bool) -> Any:
        """The registry collection; with ``create=False`` (commands that only read) a missing
        one is an error naming the indexes whose repository is gone (moved and renamed?)."""
        if create:
            reg = self.client.get_or_create_collection(
                self.name, embedding_function=None, metadata={"kind": "gleandb-code", "repo_path": self.repo.path})
        else:
            try:
                reg = self.client.get_collection(self.name, embedding_function=None)
            except NotFoundError:
                raise CodeError(f"{self.repo.path} is not indexed in this store (no {self.name!r}"
                                f"{self._orphans()}); run: glean code index {self.repo.path}") from None
        meta = dict(reg.metadata or {})
        if meta.get("kind") != "gleandb-code":
            raise CodeError(f"collection {self.name!r} exists and is not a code index registry; pass another --name")
        old = meta.get("repo_path")
        if old != self.repo.path:
            if old and os.path.isdir(old) and _is_git(old):
                raise CodeError(f"another repository at {old} is already indexed as {self.name!r}; "
                                f"pass --name to index {self.repo.path} under another name")
            self.log(f"repository moved: {old} -> {self.repo.path} (recorded the new path)")
            meta["repo_path"] = self.repo.path
            reg.modify(metadata=meta)
        return reg

    def _orphans(self) -> str:
        """", indexes whose repository path is gone: ..." for the error of a repository not found."""
        gone = []
        for c in self.client.list_collections():
            name = c if isinstance(c, str) else c.name
            if re.fullmatch(r"code\.[A-Za-z0-9_-]+", name):
                path = (self.client.get_collection(name, embedding_function=None).metadata or {}).get("repo_path")
                if path and not os.path.isdir(path):
                    gone.append(f"{name} ({path}; pass --name {name[5:]} if it moved here)")
        return f"; indexes whose repository is gone: {', '.join(gone)}" if gone else ""

    def _settle_ef(self, ef: Any) -> Any:
        """The index's embedding function: recorded in the registry by the first ``index``; a
        different one later is refused (vectors of two models do not mix), None means the recorded one."""
        from gleandb.embeddings.functions import DefaultEmbeddingFunction, build_ef, describe_ef

        meta = dict(self._registry.metadata or {})
        recorded = json.loads(meta["embedding"]) if meta.get("embedding") else None
        if ef is None:
            ef = (build_ef(recorded) if recorded else None) or DefaultEmbeddingFunction()
        desc = describe_ef(ef)
        if recorded is None:
            meta["embedding"] = json.dumps(desc, sort_keys=True)
            self._registry.modify(metadata=meta)
        elif recorded != json.loads(json.dumps(desc, sort_keys=True)):
            raise CodeError(f"{self.name!r} is indexed with the embedding function {recorded.get('name')!r}, "
                            f"not {desc.get('name') if desc else None!r}; use the same one or another --name")
        return ef

    def aliases(self) -> dict[str, str]:
        """Branch name -> sha, read from the store (another process, e.g. a hook, may have moved one)."""
        meta = self._fresh_registry_meta()
        return {k[len("alias:"):]: v for k, v in meta.items() if k.startswith("alias:")}

    def _set_aliases(self, sha: str, names: list[str]) -> None:
        if not names:
            return
        meta = dict(self._fresh_registry_meta())
        for n in names:
            meta[f"alias:{n}"] = sha
        self._registry.modify(metadata=meta)

    def _fresh_registry_meta(self) -> dict:
        self._registry = self.client.get_collection(self.name, embedding_function=None)
        return self._registry.metadata or {}

    # ---------------------------------------------------------------- naming
    def collection_name(self, sha: str) -> str:
        return f"{self.name}.{sha[:12]}"

    def _get(self, sha: str) -> Any | None:
        try:
            return self.client.get_collection(self.collection_name(sha), embedding_function=self.ef)
        except NotFoundError:  # locally and over HTTP alike
            return None

    def indexed(self) -> set[str]:
        """Short shas (12 hex) of the indexed commits."""
        prefix = self.name + "."
        names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
        return {n[len(prefix):] for n in names if n.startswith(prefix) and re.fullmatch(r"[0-9a-f]{12}", n[len(prefix):])}

    def resolve(self, rev: str) -> str:
        """The full sha of ``rev``: a branch alias, else whatever git resolves."""
        alias = self.aliases().get(rev)
        return alias if alias else self.repo.resolve(rev)

    def collection(self, rev: str) -> Any:
        """The collection of an indexed revision; CodeError when it is not indexed."""
        sha = self.resolve(rev)
        col = self._get(sha)
        if col is None or not _complete(col, sha):
            how = "is not indexed" if col is None else "has an incomplete index (an interrupted run)"
            raise CodeError(f"revision {rev!r} ({sha[:12]}) {how}; run: glean code index {self.repo.path} --rev {rev}")
        return col

    # ---------------------------------------------------------------- indexing
    @property
    def cache(self) -> EmbeddingCache:
        if self._cache is None:
            self._cache = EmbeddingCache(self.client, self.ef)
        return self._cache

    def index_rev(self, rev: str = "HEAD") -> IndexReport:
        return self.index_commit(self.repo.resolve(rev))

    def index_last(self, n: int, rev: str = "HEAD") -> list[IndexReport]:
        """The last ``n`` first-parent commits up to ``rev``, oldest first (each forks the previous)."""
        if n < 1:
            raise CodeError(f"--last must be >= 1, got {n}")
        shas = self.repo.first_parents(self.repo.resolve(rev), n)
        return [self.index_commit(s) for s in reversed(shas)]

    def index_branches(self, last: int = 1) -> list[IndexReport]:
        """Each local branch's tip (and up to ``last`` - 1 first-parent ancestors before it)."""
        out = []
        for _name, tip in sorted(self.repo.branches().items()):
            for s in reversed(self.repo.first_parents(tip, last)):
                out.append(self.index_commit(s))
        return out

    def _base(self, commit: Any) -> tuple[str | None, str]:
        """The indexed commit to fork from, and a note when there is none or it is not the parent."""
        if not commit.parents:
            return None, "root commit: indexing from scratch"
        parent = commit.parents[0]
        if not self.repo.has_object(parent):
            return None, f"parent {parent[:12]} is missing (shallow clone): indexing {commit.sha[:12]} from scratch"
        got = self._get(parent)
        if got is not None and _complete(got, parent):
            return parent, ""
        done = self.indexed()
        try:
            ancestors = self.repo.first_parents(parent, ANCESTOR_SEARCH)
        except GitError:  # history cut by a shallow clone
            ancestors = []
        for depth, sha in enumerate(ancestors[1:], start=2):
            if sha[:12] in done and _complete(self._get(sha), sha):
                return sha, f"parent {parent[:12]} is not indexed: forking ancestor {sha[:12]} ({depth} commits back)"
        return None, f"parent {parent[:12]} is not indexed: indexing {commit.sha[:12]} from scratch"

    def index_commit(self, sha: str) -> IndexReport:
        t0 = time.perf_counter()
        commit = self.repo.commit(sha)
        name = self.collection_name(sha)
        existing = self._get(sha)
        if existing is not None and _complete(existing, sha):
            rep = IndexReport(sha, name, "exists", note="already indexed")
            rep.aliases = self.repo.branches_at(sha)
            self._set_aliases(sha, rep.aliases)
            return rep
        if existing is not None:  # a run killed half way (an error deletes its collection itself)
            self.log(f"{sha[:12]}: removing an index left incomplete by an interrupted run")
            self.client.delete_collection(name)
        base, note = self._base(commit)
        meta = {"commit": sha, "parent": commit.parents[0] if commit.parents else "", "tree": commit.tree,
                "repo_path": self.repo.path, "base": base or "", "kind": "gleandb-code-commit", "complete": False}
        if base is None:
            files = [(e.path, e.mode, e.blob) for e in self.repo.ls_tree(sha)]
            deleted: list[str] = []
        else:
            changes = self.repo.diff_tree(base, sha)
            deleted = [c.path for c in changes if c.status != "A"]
            files = [(c.path, c.new_mode, c.new_blob) for c in changes if c.status != "D"]
        rep = IndexReport(sha, name, "scratch" if base is None else "fork", base or "", note,
                          files=len(set(deleted) | {f[0] for f in files}))
        cache = self.cache
        e0, r0, c0 = cache.embedded, cache.reused, cache.db_seconds
        t = time.perf_counter()
        if base is None:
            col = self.client.create_collection(name, embedding_function=self.ef, metadata=meta)
        else:
            col = self._get(base).fork(name)
        try:  # from here on, a commit is indexed whole or not at all (until the last modify, a fork
            # carries its source's metadata, which names another commit: not complete, see _complete)
            for i in range(0, len(deleted), ADD_BATCH):
                col.delete(where={"path": {"$in": deleted[i:i + ADD_BATCH]}})
            db = time.perf_counter() - t
            rep.chunks_added, add_s = self._add_files(col, sha, files, rep.skipped)
            t = time.perf_counter()
            try:  # one segment per commit, so the next fork shares it instead of copying a WAL tail
                col.flush()
            except (AttributeError, NotImplementedError):
                pass  # over HTTP the server flushes on its own
            col.modify(metadata={**meta, "complete": True})  # the commit point of this commit's index
            db += time.perf_counter() - t + add_s
        except BaseException:
            try:
                self.client.delete_collection(name)
            except Exception:  # noqa: BLE001,S110 - the original error matters more
                pass
            raise
        rep.embedded, rep.reused = cache.embedded - e0, cache.reused - r0
        rep.db_seconds = db + cache.db_seconds - c0
        rep.aliases = self.repo.branches_at(sha)
        self._set_aliases(sha, rep.aliases)
        rep.seconds = time.perf_counter() - t0
        return rep

    def _add_files(self, col: Any, sha: str, files: list[tuple[str, str, str]], skipped: list) -> tuple[int, float]:
        """Chunk, embed (through the cache) and add ``files``: (chunks added, seconds in ``add``)."""
        todo = [(p, b) for p, m, b in files if m in _INDEXABLE_MODES]
        for p, m, _b in files:
            if m not in _INDEXABLE_MODES and m != "000000":
                skipped.append((p, "symlink" if m == "120000" else "submodule" if m == "160000" else f"mode {m}"))
        sizes = self.repo.blob_sizes(list({b for _p, b in todo}))
        small = []
        for p, b in todo:
            if sizes.get(b, 0) > self.max_file_bytes:
                skipped.append((p, f"huge ({sizes[b]} bytes > {self.max_file_bytes})"))
            else:
                small.append((p, b))
        blobs = self.repo.read_blobs(list({b for _p, b in small}))
        ids, docs, metas = [], [], []
        for p, b in sorted(small):
            data = blobs.get(b, b"")
            if _is_binary(data):
                skipped.append((p, "binary"))
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                skipped.append((p, "not UTF-8"))
                continue
            lang = language_of(p)
            for n, ch in enumerate(chunk_file(p, text)):
                ids.append(f"{p}#{n}")
                docs.append(ch.text)
                metas.append({"path": p, "language": lang, "symbol": ch.symbol, "start_line": ch.start_line,
                              "end_line": ch.end_line, "commit": sha, "blob": b,
                              "hash": hashlib.sha256(ch.text.encode("utf-8", "surrogatepass")).hexdigest()[:24]})
        add_s = 0.0
        for i in range(0, len(ids), ADD_BATCH):
            embs = self.cache.embed(docs[i:i + ADD_BATCH])
            t = time.perf_counter()
            col.add(ids=ids[i:i + ADD_BATCH], documents=docs[i:i + ADD_BATCH], metadatas=metas[i:i + ADD_BATCH],
                    embeddings=embs)
            add_s += time.perf_counter() - t
        return len(ids), add_s

    # ---------------------------------------------------------------- reading
    def diff(self, old_rev: str, new_rev: str) -> list[ChunkChange]:
        """The chunks that differ between two indexed revisions (by path, symbol and content)."""
        a, b = self.collection(old_rev), self.collection(new_rev)
        sa, sb = self.resolve(old_rev), self.resolve(new_rev)
        paths = sorted({c.path for c in self.repo.diff_tree(sa, sb)})
        if not paths:
            return []
        rows_a = _rows(a, paths)
        rows_b = _rows(b, paths)
        key = lambda m: (m["path"], m["symbol"], m["hash"])  # noqa: E731
        left: dict[tuple, int] = {}
        for m in rows_a:
            left[key(m)] = left.get(key(m), 0) + 1
        symbols_a = {(m["path"], m["symbol"]) for m in rows_a}
        symbols_b = {(m["path"], m["symbol"]) for m in rows_b}
        out = []
        for m in rows_b:
            k = key(m)
            if left.get(k, 0) > 0:
                left[k] -= 1
                continue
            status = "M" if (m["path"], m["symbol"]) in symbols_a else "A"
            out.append(ChunkChange(status, m["path"], m["start_line"], m["end_line"], m["symbol"]))
        right: dict[tuple, int] = {}
        for m in rows_b:
            right[key(m)] = right.get(key(m), 0) + 1
        for m in rows_a:
            k = key(m)
            if right.get(k, 0) > 0:
                right[k] -= 1
                continue
            if (m["path"], m["symbol"]) not in symbols_b:
                out.append(ChunkChange("D", m["path"], m["start_line"], m["end_line"], m["symbol"]))
        out.sort(key=lambda c: (c.path, c.start_line, c.status))
        return out

    def search(self, question: str, rev: str = "HEAD", n_results: int = 10, changed_since: str | None = None,
               path: str | None = None) -> list[dict]:
        """Hybrid retrieval (``Collection.retrieve``, the collection's stored configuration) at ``rev``;
        ``changed_since`` keeps only chunks added or modified since that revision."""
        col = self.collection(rev)
        where = None
        if changed_since is not None:
            changes = [c for c in self.diff(changed_since, rev) if c.status != "D"]
            if path:
                changes = [c for c in changes if path_matches(c.path, path)]
            if not changes:
                return []
            by_path: dict[str, list[int]] = {}
            for c in changes:
                by_path.setdefault(c.path, []).append(c.start_line)
            clauses = [{"$and": [{"path": p}, {"start_line": {"$in": s}}]} for p, s in sorted(by_path.items())]
            where = clauses[0] if len(clauses) == 1 else {"$or": clauses}
        elif path:
            paths = sorted({e.path for e in self.repo.ls_tree(self.resolve(rev)) if path_matches(e.path, path)})
            if not paths:
                return []
            where = {"path": {"$in": paths}}
        res = col.retrieve(query_texts=[question], n_results=n_results, where=where,
                           include=["documents", "metadatas"])
        out = []
        for id_, doc, meta, score in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["scores"][0]):
            if path and not path_matches(meta["path"], path):
                continue
            out.append({"id": id_, "document": doc, "score": score, **meta})
        return out[:n_results]

    def grep(self, pattern: str, rev: str = "HEAD", path: str | None = None,
             ignore_case: bool = False) -> list[tuple[str, int, str]]:
        """``git grep -n -E`` at ``rev``: (path, line, text) rows (see ``gleandb.code.grep``)."""
        from gleandb.code.grep import grep

        return grep(self.collection(rev), pattern, path, ignore_case)


def _complete(col: Any, sha: str) -> bool:
    """Whether ``col`` is the finished index of ``sha`` (a fork carries its source's metadata
    until its own is written, and ``complete`` is set last)."""
    meta = (col.metadata or {}) if col is not None else {}
    return meta.get("commit") == sha and meta.get("complete") is True


def _rows(col: Any, paths: list[str]) -> list[dict]:
    rows = []
    for i in range(0, len(paths), ADD_BATCH):
        rows += col.get(where={"path": {"$in": paths[i:i + ADD_BATCH]}}, include=["metadatas"])["metadatas"]
    return rows


def _has_glob(p: str) -> bool:
    return any(ch in p for ch in "*?[")


def path_matches(path: str, spec: str) -> bool:
    """git pathspec, simplified: a glob (``*`` crosses ``/``), a file, or a directory prefix."""
    if _has_glob(spec):
        return fnmatch.fnmatchcase(path, spec)
    spec = spec.rstrip("/")
    return path == spec or path.startswith(spec + "/") or spec in ("", ".")


def _is_git(path: str) -> bool:
    try:
        Repo(path)
        return True
    except GitError:
        return False
