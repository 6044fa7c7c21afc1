"""Does a new memory restate, supersede or not touch the memories a scope already has?

The candidates are the scope's live memories nearest to the new text by embedding
(cosine similarity ``sim``). Without an LLM the decision is a documented heuristic, taken
against the nearest candidates in order:

1. **same**: ``sim >= same_threshold`` (default 0.92): a restatement. The old memory is
   updated to the new text (its history keeps the old one); no near-duplicate is added.
2. **supersedes**, when either
   - both memories carry the same value under the subject key (``metadata["subject"]``
     by default, e.g. ``"city"``): an explicit slot, the reliable way without an LLM; or
   - ``sim >= supersede_threshold`` (default 0.4) *and* the two texts are the same
     sentence with one changed span of words ("I live in Paris" / "I live in Berlin now"):
     at least half of the longer text's words are shared, in order, and the differences
     form exactly one contiguous replaced span.
   The old memory leaves recall (status ``superseded``, kept in history).
3. otherwise **unrelated**: a new memory.

The heuristic errs both ways ("I like coffee" / "I like tea" reads as a changed value;
"I moved to Berlin" does not supersede "I live in Paris"); with an LLM the candidates
above ``llm_threshold`` are shown to the model, which answers same / supersedes /
unrelated and which one. If the model fails, the heuristic decides and a warning says so.
"""

from __future__ import annotations

import difflib
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

WORD = re.compile(r"\w+", re.UNICODE)
SAME, SUPERSEDES, UNRELATED = "same", "supersedes", "unrelated"

SYSTEM = """You maintain the long-term memory of an assistant. A NEW memory is about to be stored.
Decide how it relates to the EXISTING memories listed (all about the same user/agent):
- "same": it restates an existing memory (same fact, maybe other words); the existing one is refreshed.
- "supersedes": it contradicts or updates an existing memory (the fact changed); the existing one becomes history.
- "unrelated": neither; it is stored as a new memory.
Answer with JSON only: {"decision": "same" | "supersedes" | "unrelated", "id": <the existing memory's number, or null>}"""


class MemoryJudgeWarning(UserWarning):
    """The LLM could not judge; the heuristic decided instead."""


@dataclass
class Candidate:
    id: str
    text: str
    sim: float
    metadata: dict


@dataclass
class Decision:
    decision: str
    id: str | None
    reason: str


def one_changed_span(a: str, b: str) -> bool:
    wa, wb = WORD.findall(a.lower()), WORD.findall(b.lower())
    if not wa or not wb or wa == wb:
        return False
    sm = difflib.SequenceMatcher(a=wa, b=wb, autojunk=False)
    shared = sum(m.size for m in sm.get_matching_blocks())
    if shared * 2 < max(len(wa), len(wb)):
        return False
    diffs = [op for op in sm.get_opcodes() if op[0] != "equal"]
    return len(diffs) == 1 and diffs[0][0] == "replace"


def heuristic(text: str, metadata: dict, cands: list[Candidate], same_threshold: float,
              supersede_threshold: float, subject_key: str | None) -> Decision:
    subject = metadata.get(subject_key) if subject_key else None
    for c in cands:  # nearest first
        if c.sim >= same_threshold:
            return Decision(SAME, c.id, f"cosine {c.sim:.3f} >= same_threshold {same_threshold}")
    if subject is not None:
        for c in cands:
            if c.metadata.get(subject_key) == subject:
                return Decision(SUPERSEDES, c.id, f"same {subject_key} {subject!r}")
    for c in cands:
        if c.sim >= supersede_threshold and one_changed_span(c.text, text):
            return Decision(SUPERSEDES, c.id,
                            f"cosine {c.sim:.3f} >= supersede_threshold {supersede_threshold} and one changed span")
    return Decision(UNRELATED, None, "no restated or superseded memory")


def judge(llm: Any, text: str, cands: list[Candidate]) -> Decision:
    """Ask the model; raises ValueError on an answer that is not the JSON asked for."""
    listing = "\n".join(f'<existing id="{i}">\n{c.text}\n</existing>' for i, c in enumerate(cands))
    prompt = f"New memory: {text}\n\n{listing}"
    reply = llm.complete(SYSTEM, [{"role": "user", "content": prompt}])
    raw = getattr(reply, "text", reply)
    m = re.search(r"\{.*\}", raw or "", re.S)
    if not m:
        raise ValueError(f"the model's answer is not JSON: {raw!r}")
    ans = json.loads(m.group(0))
    decision, idx = ans.get("decision"), ans.get("id")
    if decision not in (SAME, SUPERSEDES, UNRELATED):
        raise ValueError(f"the model's decision must be same, supersedes or unrelated, got {decision!r}")
    if decision == UNRELATED:
        return Decision(UNRELATED, None, "LLM: unrelated")
    if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < len(cands):
        raise ValueError(f"the model's id must be one of 0..{len(cands) - 1}, got {idx!r}")
    return Decision(decision, cands[idx].id, f"LLM: {decision} (cosine {cands[idx].sim:.3f})")


def decide(text: str, metadata: dict, cands: list[Candidate], *, llm: Any, same_threshold: float,
           supersede_threshold: float, llm_threshold: float, subject_key: str | None) -> Decision:
    if llm is not None:
        subject = metadata.get(subject_key) if subject_key else None
        shown = [c for c in cands if c.sim >= llm_threshold
                 or (subject is not None and c.metadata.get(subject_key) == subject)]
        if not shown:
            return Decision(UNRELATED, None, f"no memory with cosine >= llm_threshold {llm_threshold}")
        try:
            return judge(llm, text, shown)
        except Exception as exc:  # a model failure must not lose the memory
            warnings.warn(f"memory: the LLM could not judge supersession ({exc}); the heuristic decided",
                          MemoryJudgeWarning, stacklevel=3)
    return heuristic(text, metadata, cands, same_threshold, supersede_threshold, subject_key)
