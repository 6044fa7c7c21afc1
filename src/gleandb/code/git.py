"""The few git plumbing commands the code index needs, run as subprocesses.

Plumbing (``rev-parse``, ``cat-file``, ``ls-tree``, ``diff-tree``) rather than porcelain, with
``-z`` wherever paths are printed, so output does not depend on the user's configuration
or on odd file names. Every failure a user can cause (not a repository, an unknown
revision, a parent missing from a shallow clone) is a :class:`GitError` with one line.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass


class CodeError(ValueError):
    """A failure of ``glean code`` the user can fix; its message is one line."""


class GitError(CodeError):
    """A git failure the user can fix (a path, a revision)."""


@dataclass(frozen=True)
class Commit:
    sha: str
    tree: str
    parents: tuple[str, ...]


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    blob: str
    size: int
    path: str


@dataclass(frozen=True)
class Change:
    """One line of ``git diff-tree -r --no-renames``: ``status`` is A, D, M or T."""

    status: str
    path: str
    old_mode: str
    new_mode: str
    old_blob: str
    new_blob: str


def _env() -> dict:
    env = dict(os.environ)
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0")
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):  # hooks run with these set
        env.pop(key, None)
    return env


class Repo:
    """A git repository at ``path`` (a working copy or a bare repository)."""

    def __init__(self, path: str) -> None:
        if not os.path.isdir(path):
            raise GitError(f"{path}: no such directory")
        try:
            top = self._run_at(path, "rev-parse", "--absolute-git-dir").strip()
        except GitError:
            raise GitError(f"{path}: not a git repository") from None
        self.git_dir = top
        bare = self._run_at(path, "rev-parse", "--is-bare-repository").strip() == "true"
        self.path = top if bare else self._run_at(path, "rev-parse", "--show-toplevel").strip()

    @staticmethod
    def _run_at(cwd: str, *args: str, input: bytes | None = None) -> str:
        return Repo._raw_at(cwd, *args, input=input).decode("utf-8", "surrogateescape")

    @staticmethod
    def _raw_at(cwd: str, *args: str, input: bytes | None = None) -> bytes:
        try:
            p = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, env=_env())
        except FileNotFoundError:
            raise GitError("git is not installed (the code index runs git)") from None
        if p.returncode != 0:
            msg = p.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(msg[0] if msg else f"git {' '.join(args)} failed ({p.returncode})")
        return p.stdout

    def run(self, *args: str) -> str:
        return self._run_at(self.path, *args)

    def raw(self, *args: str) -> bytes:
        return self._raw_at(self.path, *args)

    # ------------------------------------------------------------------ revisions
    def resolve(self, rev: str) -> str:
        """The full sha of the commit ``rev`` names; GitError('unknown revision') otherwise."""
        if rev.startswith("-"):
            raise GitError(f"unknown revision {rev!r} in {self.path}")
        try:
            return self.run("rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}").strip()
        except GitError:
            raise GitError(f"unknown revision {rev!r} in {self.path}") from None

    def has_object(self, sha: str) -> bool:
        try:
            self.run("cat-file", "-e", sha)
            return True
        except GitError:
            return False

    def commit(self, sha: str) -> Commit:
        text = self.run("cat-file", "commit", sha)
        tree, parents = "", []
        for line in text.split("\n"):
            if not line:
                break
            key, _, value = line.partition(" ")
            if key == "tree":
                tree = value
            elif key == "parent":
                parents.append(value)
        return Commit(sha, tree, tuple(parents))

    def first_parents(self, sha: str, limit: int) -> list[str]:
        """``sha`` and its first-parent ancestors, newest first, at most ``limit``."""
        return self.run("rev-list", "--first-parent", f"--max-count={limit}", sha).split()

    def branches(self) -> dict[str, str]:
        """Local branch name -> tip sha."""
        out = self.run("for-each-ref", "--format=%(objectname) %(refname:short)", "refs/heads")
        return {name: sha for sha, name in (line.split(" ", 1) for line in out.splitlines() if line)}

    def branches_at(self, sha: str) -> list[str]:
        return sorted(name for name, tip in self.branches().items() if tip == sha)

    def is_shallow(self) -> bool:
        return os.path.exists(os.path.join(self.git_dir, "shallow"))

    # ------------------------------------------------------------------ trees
    def ls_tree(self, sha: str) -> list[TreeEntry]:
        out = self.raw("ls-tree", "-r", "-z", "-l", "--full-tree", sha)
        entries = []
        for rec in out.split(b"\0"):
            if not rec:
                continue
            meta, _, path = rec.partition(b"\t")
            mode, kind, blob, size = meta.split()
            if kind != b"blob":
                continue  # submodules
            entries.append(TreeEntry(mode.decode(), blob.decode(), int(size) if size != b"-" else 0,
                                     path.decode("utf-8", "surrogateescape")))
        return entries

    def diff_tree(self, old: str, new: str) -> list[Change]:
        out = self.raw("diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", old, new)
        parts = out.split(b"\0")
        changes = []
        for i in range(0, len(parts) - 1, 2):
            meta = parts[i].decode()
            if not meta:
                break
            old_mode, new_mode, old_blob, new_blob, status = meta.lstrip(":").split()
            changes.append(Change(status[0], parts[i + 1].decode("utf-8", "surrogateescape"),
                                  old_mode, new_mode, old_blob, new_blob))
        return changes

    def blob_sizes(self, blobs: list[str]) -> dict[str, int]:
        if not blobs:
            return {}
        out = self.raw_input(["cat-file", "--batch-check=%(objectname) %(objectsize)"], "\n".join(blobs) + "\n")
        sizes = {}
        for line in out.decode().splitlines():
            parts = line.split()
            if len(parts) == 2:
                sizes[parts[0]] = int(parts[1])
        return sizes

    def raw_input(self, args: list[str], text: str) -> bytes:
        return self._raw_at(self.path, *args, input=text.encode())

    def read_blobs(self, blobs: list[str]) -> dict[str, bytes]:
        """The contents of ``blobs`` through one ``git cat-file --batch``."""
        if not blobs:
            return {}
        out = self.raw_input(["cat-file", "--batch"], "\n".join(blobs) + "\n")
        result, pos = {}, 0
        while pos < len(out):
            nl = out.index(b"\n", pos)
            header = out[pos:nl].decode().split()
            pos = nl + 1
            if len(header) < 3:  # "<sha> missing"
                continue
            size = int(header[2])
            result[header[0]] = out[pos:pos + size]
            pos += size + 1
        return result
