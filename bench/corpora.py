"""Real text corpora with known-item tasks, built deterministically and offline, for benchmarks.

Each corpus is a list of passages and known-item queries (one relevant passage per
query), split into ``tune`` and ``test`` queries by a seeded shuffle, so a fusion
can be chosen on one half and judged on the other. Nothing is written by the
project: the text ships with CPython, with Debian's package lists, or with the
man pages installed on the machine.

* ``stdlib``: CPython standard-library docstrings; query = the summary paragraph,
  passage = the rest of the docstring; help-topic paragraphs as distractors.
* ``debian``: Debian package descriptions (apt's ``Translation-en`` lists, from
  ``bench/.data/apt-lists`` or ``/var/lib/apt/lists``: bench/README.md says how to fetch
  them once; else the ~700 packages of ``/var/lib/dpkg/status``); query = the short
  description, passage = the long description; 2,500 sampled.
* ``man``: section-1 man pages; query = the NAME line's description **without the
  command name** (with it, BM25 finds the page by the name alone), passage = the
  DESCRIPTION section (first 300 words), roff stripped minimally.

Passages, queries and the dense vectors (all-MiniLM-L6-v2, ``.npy``) are cached
under ``bench/.data/`` (gitignored); each corpus's queries are also written as a
golden-set JSONL file (``source: "benchmark"``) there.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import inspect
import json
import pkgutil
import random
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA = Path(__file__).with_name(".data")
APT_LISTS = [DATA / "apt-lists", Path("/var/lib/apt/lists")]
MAN_DIR = Path("/usr/share/man/man1")
MAX_PASSAGE_WORDS = 300


SKIP = re.compile(r"^(_|test|idlelib|tkinter|turtle|antigravity|this|lib2to3|ensurepip|venv|pydoc_data|"
                  r"distutils|msilib|winreg|winsound|_msi|encodings\.|multiprocessing\.popen|asyncio\.windows)")


def _words(text: str) -> int:
    return len(text.split())


def _split(doc: str) -> tuple[str, str] | None:
    doc = inspect.cleandoc(doc)
    parts = re.split(r"\n\s*\n", doc, maxsplit=1)
    if len(parts) != 2:
        return None
    summary = " ".join(parts[0].split())
    body = " ".join(parts[1].split())
    if not 4 <= _words(summary) <= 40 or _words(body) < 20:
        return None
    if summary.lower().rstrip(".") in body.lower():
        return None
    return summary, body


def collect() -> list[tuple[str, str, str]]:
    """[(qualified name, summary, body)] from the standard library's docstrings."""
    stdlib = set(sys.stdlib_module_names)
    seen_objs: set[int] = set()
    items: list[tuple[str, str, str]] = []
    names = ["builtins"] + sorted(m.name for m in pkgutil.iter_modules() if m.name in stdlib and not SKIP.match(m.name))
    warnings.simplefilter("ignore")
    for top in list(names):  # submodules of packages (email.*, xml.*, asyncio.*, ...)
        try:
            path = getattr(importlib.import_module(top), "__path__", None)
        except Exception:
            continue
        if path:
            names += [m.name for m in pkgutil.walk_packages(path, top + ".", onerror=lambda _n: None)
                      if not SKIP.match(m.name) and ".test" not in m.name and "._" not in m.name]
    for modname in names:
        try:
            mod = importlib.import_module(modname)
        except Exception:
            continue
        if isinstance(mod.__doc__, str) and id(mod) not in seen_objs:
            seen_objs.add(id(mod))
            split = _split(mod.__doc__)
            if split:
                items.append((modname, *split))
        for name, obj in vars(mod).items():
            if name.startswith("_") or id(obj) in seen_objs:
                continue
            if getattr(obj, "__module__", None) != modname or not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue
            cands = [(f"{modname}.{name}", obj)]
            if inspect.isclass(obj):
                cands += [(f"{modname}.{name}.{k}", v) for k, v in vars(obj).items()
                          if not k.startswith("_") and (inspect.isroutine(v) or isinstance(v, (property, classmethod, staticmethod)))]
            for qual, o in cands:
                if id(o) in seen_objs:
                    continue
                seen_objs.add(id(o))
                doc = getattr(o, "__doc__", None)
                if isinstance(o, (classmethod, staticmethod)):
                    doc = getattr(o.__func__, "__doc__", None)
                if not isinstance(doc, str):
                    continue
                split = _split(doc)
                if split:
                    items.append((qual, *split))
    # one relevant passage per query: drop repeated summaries and repeated bodies entirely
    by_summary: dict[str, int] = {}
    by_body: dict[str, int] = {}
    for _q, summ, body in items:
        by_summary[summ.lower()] = by_summary.get(summ.lower(), 0) + 1
        by_body[body] = by_body.get(body, 0) + 1
    return [(q, s, b) for q, s, b in items if by_summary[s.lower()] == 1 and by_body[b] == 1]


def distractors() -> list[tuple[str, str]]:
    """Extra passages with no query: paragraphs (>= 30 words) of the language reference's
    help topics (``pydoc_data.topics``), so the docstrings compete with related text."""
    from pydoc_data.topics import topics

    out = []
    for name, text in sorted(topics.items()):
        for j, para in enumerate(re.split(r"\n\s*\n", text)):
            para = " ".join(para.split())
            if _words(para) >= 30:
                out.append((f"topic:{name}:{j}", para))
    return out


@dataclass
class Corpus:
    """Passages ``[(id, text)]`` and known-item queries ``[(query id, text, relevant id, split)]``."""

    name: str
    description: str
    passages: list[tuple[str, str]]
    queries: list[tuple[str, str, str, str]]
    notes: list[str] = field(default_factory=list)

    def split(self, which: str) -> list[tuple[str, str, str, str]]:
        return [q for q in self.queries if q[3] == which]

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for pid, text in self.passages:
            h.update(pid.encode() + b"\0" + text.encode() + b"\0")
        return h.hexdigest()[:16]


def _clip(text: str, n: int = MAX_PASSAGE_WORDS) -> str:
    words = text.split()
    return " ".join(words[:n])


def _known_item(name: str, description: str, items: list[tuple[str, str, str]], extra: list[tuple[str, str]],
                max_passages: int, n_queries: int, seed: int) -> Corpus:
    """Sample ``items`` = [(id, query, passage)], keep ``extra`` passages as distractors, split queries."""
    rng = random.Random(seed)
    items = sorted(items)
    rng.shuffle(items)
    items = items[:max_passages]
    extra = sorted(extra)
    rng.shuffle(extra)
    passages = [(pid, _clip(p)) for pid, _q, p in items] + [(pid, _clip(p)) for pid, p in extra]
    passages = passages[:max(max_passages, len(items))]
    qs = items[:n_queries]
    queries = [(f"{name}-q{i:05d}", q, pid, "tune" if i % 2 == 0 else "test") for i, (pid, q, _p) in enumerate(qs)]
    return Corpus(name, description, passages, queries)


def _unique(items: list[tuple[str, str, str]], min_words: int = 20) -> list[tuple[str, str, str]]:
    """One relevant passage per query: drop repeated queries and passages, leaked queries, short passages."""
    by_q: dict[str, int] = {}
    by_p: dict[str, int] = {}
    for _i, q, p in items:
        by_q[q.lower()] = by_q.get(q.lower(), 0) + 1
        by_p[p] = by_p.get(p, 0) + 1
    return [(i, q, p) for i, q, p in items
            if by_q[q.lower()] == 1 and by_p[p] == 1 and len(p.split()) >= min_words
            and q.lower().rstrip(".") not in p.lower()]


def stdlib_corpus(max_passages: int = 2000, n_queries: int = 800, seed: int = 0) -> Corpus:
    items = [(q, s, b) for q, s, b in collect()]
    return _known_item("stdlib", "CPython standard-library docstrings: summary paragraph -> rest of the docstring "
                       "(+ language-reference help-topic paragraphs as distractors)",
                       items, distractors(), max_passages, n_queries, seed)


def _translation_files() -> list[Path]:
    for d in APT_LISTS:
        files = sorted(d.glob("*_main_i18n_Translation-en*")) if d.is_dir() else []
        if files:
            return files
    return []


def _read_lists(path: Path) -> str:
    if path.suffix == ".lz4":
        return subprocess.run(["lz4", "-dc", str(path)], check=True, capture_output=True).stdout.decode("utf-8", "replace")
    return path.read_text("utf-8", "replace")


def _debian_long(lines: list[str]) -> str:
    paras, cur = [], []
    for ln in lines:
        ln = ln[1:] if ln.startswith(" ") else ln
        if ln.strip() == ".":
            paras.append(" ".join(cur))
            cur = []
        else:
            cur.append(ln.strip())
    paras.append(" ".join(cur))
    return "\n\n".join(p for p in paras if p)


def debian_items() -> tuple[list[tuple[str, str, str]], str]:
    """[(package, short description, long description)] from apt's Translation-en lists
    (``bench/.data/apt-lists`` or ``/var/lib/apt/lists``), else from ``/var/lib/dpkg/status``."""
    files = _translation_files()
    if files:
        texts = [_read_lists(f) for f in files]
        source = "apt Translation-en (" + ", ".join(f.name for f in files) + ")"
        key = "Description-en:"
    else:
        texts = [Path("/var/lib/dpkg/status").read_text("utf-8", "replace")]
        source = "/var/lib/dpkg/status (no Translation-en lists found; see bench/README.md)"
        key = "Description:"
    seen: dict[str, tuple[str, str]] = {}
    for text in texts:
        for stanza in text.split("\n\n"):
            pkg, short, long_lines, in_desc = None, None, [], False
            for ln in stanza.split("\n"):
                if ln.startswith("Package:"):
                    pkg = ln.split(":", 1)[1].strip()
                    in_desc = False
                elif ln.startswith(key):
                    short = ln.split(":", 1)[1].strip()
                    in_desc = True
                elif in_desc and ln.startswith(" "):
                    long_lines.append(ln)
                else:
                    in_desc = False
            if pkg and short and long_lines:
                seen[pkg] = (short, _debian_long(long_lines))  # later lists (updates, security) win
    return [(f"deb:{p}", s, l) for p, (s, l) in sorted(seen.items())], source


def debian_corpus(max_passages: int = 2500, n_queries: int = 800, seed: int = 0) -> Corpus:
    items, source = debian_items()
    kept = _unique(items)
    c = _known_item("debian", "Debian package descriptions: short description -> long description", kept, [],
                    max_passages, n_queries, seed)
    c.notes.append(f"source: {source}; {len(items)} packages, {len(kept)} with a unique short and long description "
                   "(>= 20 words, short not contained in long)")
    return c


_ESC = [(re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""), (re.compile(r"\\\*(\[[^\]]*\]|\(..|.)"), ""),
        (re.compile(r"\\\((em|en|hy|aq|dq|lq|rq|oq|cq|bu|co|rg|mi|tm)"), " "), (re.compile(r"\\\(..") , ""),
        (re.compile(r"\\\[[^\]]*\]"), " "), (re.compile(r"\\[-e]"), "-"), (re.compile(r"\\[&|^,/:%)]"), ""),
        (re.compile(r"\\[ ~0]"), " "), (re.compile(r"\\s[-+]?\d"), ""), (re.compile(r"\\\""), ""),
        (re.compile(r"\\(.)"), r"\1")]
_TEXT_MACROS = re.compile(r"^\.(B|I|BR|BI|IB|IR|RB|RI|SM|SB|IP|TP|Nm|Nd|Ar|Fl|Cm|Pa|Xr|Em|Sy|Dv|Ev|Va|Ql|Dq|Sq|Pq|Li)\b\s*(.*)$")


def _roff_text(line: str) -> str:
    """One roff line as plain text: requests dropped except font/mdoc macros, whose arguments are text."""
    if line.startswith((".", "'")):
        m = _TEXT_MACROS.match(line)
        if not m:
            return ""
        line = m.group(2).replace('"', "")
    for pat, rep in _ESC:
        line = pat.sub(rep, line)
    return line


def _man_page(path: Path) -> tuple[str, str, str] | None:
    """(command, NAME description, DESCRIPTION text) of one man(7)/mdoc(7) page, or None."""
    try:
        raw = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
    except (OSError, EOFError):
        return None
    lines = raw.split("\n")
    if lines and lines[0].startswith(".so "):
        return None  # a redirect to another page
    section, name_lines, desc_lines = None, [], []
    for ln in lines:
        m = re.match(r'^\.(SH|Sh)\s+"?([^"]*)"?\s*$', ln)
        if m:
            section = m.group(2).strip().upper()
            continue
        if ln.startswith(".\\\"") or ln.startswith("'\\\""):
            continue
        if section == "NAME":
            name_lines.append(ln)
        elif section == "DESCRIPTION":
            t = _roff_text(ln)
            if t.strip():
                desc_lines.append(t)
    name = " ".join(_roff_text(l) if not l.startswith(".Nd") else "- " + _roff_text(l) for l in name_lines)
    name = " ".join(name.split())
    if " - " not in name:
        return None
    cmd, what = name.split(" - ", 1)
    what = what.strip()
    desc = " ".join(" ".join(desc_lines).split())
    if not what or not desc:
        return None
    return cmd.strip(), what, desc


def man_items() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(MAN_DIR.glob("*.gz")):
        page = _man_page(path)
        if page:
            cmd, what, desc = page
            out.append((f"man1:{path.name[:-3]}", what, desc))
    return out


def man_corpus(max_passages: int = 2500, n_queries: int = 800, seed: int = 0) -> Corpus:
    items = [it for it in man_items() if not it[0].startswith(("man1:gcloud_alpha_", "man1:gcloud_beta_"))]
    kept = _unique(items)
    # gcloud's generated pages would otherwise be most of the corpus: at most as many as all other pages
    other = [it for it in kept if not it[0].startswith("man1:gcloud")]
    gcloud = sorted(it for it in kept if it[0].startswith("man1:gcloud"))
    random.Random(seed).shuffle(gcloud)
    kept = other + gcloud[:len(other)]
    c = _known_item("man", "man pages (section 1): NAME description without the command name -> DESCRIPTION section",
                    kept, [], max_passages, n_queries, seed)
    c.notes.append(f"source: {MAN_DIR}; {len(items)} pages parsed (gcloud alpha/beta pages, near-copies of the GA "
                   f"ones, left out), {len(other)} non-gcloud + {len(kept) - len(other)} gcloud pages kept with a unique "
                   "NAME description and DESCRIPTION (>= 20 words, description not contained in it); passages = first "
                   f"{MAX_PASSAGE_WORDS} words")
    return c


BUILDERS = {"stdlib": stdlib_corpus, "debian": debian_corpus, "man": man_corpus}


def load(name: str) -> Corpus:
    """The corpus ``name``, built once and cached as JSON under ``bench/.data/``."""
    DATA.mkdir(parents=True, exist_ok=True)
    cache = DATA / f"corpus-{name}.json"
    if cache.exists():
        d = json.loads(cache.read_text())
        return Corpus(d["name"], d["description"], [tuple(p) for p in d["passages"]],
                      [tuple(q) for q in d["queries"]], d.get("notes", []))
    c = BUILDERS[name]()
    cache.write_text(json.dumps({"name": c.name, "description": c.description, "passages": c.passages,
                                 "queries": c.queries, "notes": c.notes}))
    write_golden(c, DATA / f"golden-{name}.jsonl")
    return c


def write_golden(c: Corpus, path: Path) -> None:
    """The corpus's queries as a golden-set JSONL file (``source: "benchmark"``)."""
    with path.open("w", encoding="utf-8") as f:
        for qid, text, rel, split in c.queries:
            f.write(json.dumps({"query_id": qid, "query": text, "relevant": {rel: 3}, "split": split,
                                "source": "benchmark", "status": "accepted",
                                "provenance": {"corpus": c.name, "builder": "bench/corpora.py",
                                               "fingerprint": c.fingerprint(), "source_id": rel}}) + "\n")


def embeddings(c: Corpus, ef=None) -> tuple[np.ndarray, np.ndarray]:
    """(passage vectors, query vectors) with the default model, cached as ``.npy`` by fingerprint."""
    p_path = DATA / f"emb-{c.name}-{c.fingerprint()}-passages.npy"
    q_path = DATA / f"emb-{c.name}-{c.fingerprint()}-queries.npy"
    if p_path.exists() and q_path.exists():
        return np.load(p_path), np.load(q_path)
    if ef is None:
        import gleandb

        ef = gleandb.DefaultEmbeddingFunction()
    embed_q = getattr(ef, "embed_query", None) or ef
    q = np.asarray(embed_q([t for _i, t, _r, _s in c.queries]), dtype=np.float32)
    np.save(q_path, q)
    p = np.asarray(ef([t for _i, t in c.passages]), dtype=np.float32)
    np.save(p_path, p)
    return p, q


if __name__ == "__main__":
    for n in sys.argv[1:] or list(BUILDERS):
        c = load(n)
        print(f"{n}: {len(c.passages)} passages, {len(c.queries)} queries; {'; '.join(c.notes)}", flush=True)
        embeddings(c)
        print(f"{n}: embedded", flush=True)
