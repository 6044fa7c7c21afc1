"""A small git repository built by the tests: Python, JavaScript, Markdown, a binary file,
a Latin-1 file, and a history with a branch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com", "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=ENV, check=True, capture_output=True, text=True).stdout


def write(repo: Path, rel: str, text: str | bytes) -> None:
    p = repo / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)


def commit(repo: Path, msg: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)
    return git(repo, "rev-parse", "HEAD").strip()


APP_V1 = '''"""The app."""
import os
import sys

VERSION = "1.0"


class Group:
    """A group of commands."""

    name = "group"

    def command(self, f):
        """Register f."""
        return f

    def invoke(self, ctx):
        for c in ctx.commands:
            c(ctx)


def main(argv=None):
    g = Group()
    return g.invoke(argv)
'''

UTIL = '''def helper(x):
    return x * 2


def other(y):
    # TODO: remove
    return y - 1
'''

README = '''# Project

Intro text.

## Install

    pip install project

## Usage

Call `main()`.
'''

APP_JS = '''import fs from "fs";

export class Reader {
  read(path) {
    return fs.readFileSync(path, "utf8");
  }
}

const parse = (s) => JSON.parse(s);

function run() {
  return parse("{}");
}
'''


def build(root: Path) -> tuple[Path, list[str], str]:
    """The repository, its main-branch commits (oldest first) and the tip of branch ``feature``."""
    repo = root / "proj"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "app.py", APP_V1)
    write(repo, "pkg/util.py", UTIL)
    write(repo, "README.md", README)
    write(repo, "web/app.js", APP_JS)
    write(repo, "logo.bin", bytes(range(256)) * 4)
    write(repo, "notes.txt", "\n".join(f"note {i}: line with word{i % 7}" for i in range(130)) + "\n")
    shas = [commit(repo, "initial")]
    write(repo, "app.py", APP_V1.replace("        return f\n", "        self.commands = [f]\n        return f\n"))
    write(repo, "latin1.txt", "caf\xe9\n".encode("latin-1"))
    write(repo, "pkg/extra.py", "def extra():\n    return 'TODO later'\n")
    shas.append(commit(repo, "command keeps f"))
    git(repo, "rm", "-q", "pkg/util.py")
    write(repo, "README.md", README + "\n## Changes\n\n- removed util\n")
    shas.append(commit(repo, "drop util"))
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "app.py", APP_V1.replace("def main(argv=None):", "def main(argv=None, verbose=False):"))
    feature = commit(repo, "feature: verbose")
    git(repo, "checkout", "-q", "main")
    write(repo, "web/app.js", APP_JS.replace('"{}"', '"[]"') + "\nfunction stop() {}\n")
    shas.append(commit(repo, "js: list"))
    return repo, shas, feature
