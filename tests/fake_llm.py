"""A local chat server for tests: OpenAI chat completions and Anthropic messages.

It runs in a thread on a free loopback port, records every request (path, headers, JSON
body) and answers by a rule the test controls. The default rule grades or ranks the
passages in the prompt by ``relevance(query, passage)`` (a word-overlap count by default),
so re-rankers can be checked end to end without a model.

It also plays the two roles of generative benchmarking (``gleandb.evals.generate``): the
judge keeps a document with at least ``JUDGE_MIN_WORDS`` words, and the query writer
answers with the document's first content words, as many as the example queries in the
prompt have on average (4 without examples). Deterministic, so tests and the worked example
in the docs can rely on it.

As the memory judge (``gleandb.Memory(llm=...)``) it answers by a rule tests can predict:
"same" when the new and an existing memory have the same content words, "supersedes" when
both start with the same ``subject:`` prefix and differ after it, else "unrelated".
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

PASSAGE = re.compile(r'<passage id="(\d+)">\n(.*?)\n</passage>', re.S)
QUERY = re.compile(r"^Query: (.*)$", re.M)
DOCUMENT = re.compile(r'<document id="([^"]*)">\n(.*?)\n</document>', re.S)
EXAMPLES = re.compile(r"<example-queries>\n(.*?)\n</example-queries>", re.S)
CRITERION = re.compile(r"^\d+\. (.*)$", re.M)
NEW_MEMORY = re.compile(r"^New memory: (.*)$", re.M)
EXISTING = re.compile(r'<existing id="(\d+)">\n(.*?)\n</existing>', re.S)
JUDGE_MIN_WORDS = 8
STOPWORDS = set("""a an and are as at be by for from has have how i in is it its of on or that the this to
was were what when where which who why will with you your do does can not no""".split())


@dataclass
class Request:
    path: str
    headers: dict
    body: dict

    @property
    def provider(self) -> str:
        return "anthropic" if self.path.endswith("/messages") else "openai"

    @property
    def system(self) -> str:
        if self.provider == "anthropic":
            return self.body.get("system", "")
        return next((m["content"] for m in self.body["messages"] if m["role"] == "system"), "")

    @property
    def turns(self) -> list[dict]:
        return [m for m in self.body["messages"] if m["role"] != "system"]

    @property
    def prompt(self) -> str:
        """The first user turn (query + passages)."""
        return self.turns[0]["content"]

    @property
    def query(self) -> str:
        return QUERY.search(self.prompt).group(1)

    @property
    def passages(self) -> list[str]:
        return [m.group(2) for m in PASSAGE.finditer(self.prompt)]

    @property
    def listwise(self) -> bool:
        return '"ranking"' in self.system

    @property
    def is_repair(self) -> bool:
        return len(self.turns) > 1

    # generative benchmarking (gleandb.evals.generate)
    @property
    def is_judge(self) -> bool:
        return '"keep"' in self.system

    @property
    def is_query_writer(self) -> bool:
        return '"query"' in self.system and "search benchmark" in self.system

    @property
    def document_id(self) -> str:
        return DOCUMENT.search(self.prompt).group(1)

    @property
    def document(self) -> str:
        return DOCUMENT.search(self.prompt).group(2)

    @property
    def example_queries(self) -> list[str]:
        m = EXAMPLES.search(self.prompt)
        return m.group(1).split("\n") if m else []

    @property
    def is_memory_judge(self) -> bool:
        return '"decision"' in self.system and "memory" in self.system

    @property
    def criteria(self) -> list[str]:
        return CRITERION.findall(self.prompt) if self.is_judge else []


def overlap(query: str, passage: str) -> int:
    words = lambda s: set(re.findall(r"[a-z0-9]+", s.lower()))  # noqa: E731
    return len(words(query) & words(passage))


@dataclass
class Reply:
    status: int = 200
    text: str | None = None          # the model's answer (wrapped in the provider's shape)
    raw: Any = None                  # or a raw JSON body / bytes
    headers: dict = field(default_factory=dict)
    usage: tuple[int, int] = (100, 10)
    delay: float = 0.0               # seconds before answering (timeout tests)


def judge_answer(req: Request) -> str:
    words = len(req.document.split())
    keep = words >= JUDGE_MIN_WORDS
    return json.dumps({"keep": keep, "reason": f"{words} words, {'enough' if keep else 'too few'} to search for"})


def query_answer(req: Request) -> str:
    examples = req.example_queries
    length = round(sum(len(q.split()) for q in examples) / len(examples)) if examples else 4
    content = [w for w in re.findall(r"[a-z0-9]+", req.document.lower()) if w not in STOPWORDS]
    return json.dumps({"query": " ".join(content[: max(1, length)])})


def memory_answer(req: Request) -> str:
    new = NEW_MEMORY.search(req.prompt).group(1)
    content = lambda s: {w for w in re.findall(r"[a-z0-9]+", s.lower()) if w not in STOPWORDS}  # noqa: E731
    subject = lambda s: s.split(":", 1)[0].strip().lower() if ":" in s else None  # noqa: E731
    for m in EXISTING.finditer(req.prompt):
        idx, old = int(m.group(1)), m.group(2)
        if content(old) == content(new):
            return json.dumps({"decision": "same", "id": idx})
        if subject(new) is not None and subject(old) == subject(new):
            return json.dumps({"decision": "supersedes", "id": idx})
    return json.dumps({"decision": "unrelated", "id": None})


def default_answer(req: Request, relevance: Callable[[str, str], int] = overlap) -> str:
    if req.is_memory_judge:
        return memory_answer(req)
    if req.is_judge:
        return judge_answer(req)
    if req.is_query_writer:
        return query_answer(req)
    passages = req.passages
    scores = [relevance(req.query, p) for p in passages]
    if req.listwise:
        order = sorted(range(len(passages)), key=lambda i: -scores[i])
        return json.dumps({"ranking": order})
    return json.dumps({"grades": [{"id": i, "grade": max(0, min(3, s))} for i, s in enumerate(scores)]})


class FakeLLM:
    """``rule(request) -> Reply`` (default: answer by word overlap)."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Request] = []
        self.rule: Callable[[Request], Reply] = lambda req: Reply(text=default_answer(req))
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.hold_until: int | None = None  # make requests wait until this many are in flight
        self._cond = threading.Condition(self.lock)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake._cond:
                    fake.requests.append(req)
                    fake.inflight += 1
                    fake.max_inflight = max(fake.max_inflight, fake.inflight)
                    fake._cond.notify_all()
                    if fake.hold_until is not None:
                        # the first requests wait (bounded) until the expected number are in flight
                        fake._cond.wait_for(lambda: fake.max_inflight >= fake.hold_until, timeout=5)
                try:
                    reply = fake.rule(req)
                    if reply.delay:
                        threading.Event().wait(reply.delay)
                finally:
                    # before answering: the client cannot send its next request before this
                    with fake._cond:
                        fake.inflight -= 1
                self._send(req, reply)

            def _send(self, req: Request, reply: Reply) -> None:
                if reply.raw is not None:
                    data = reply.raw if isinstance(reply.raw, bytes) else json.dumps(reply.raw).encode()
                elif reply.status >= 300:
                    data = json.dumps({"error": {"message": f"fake error {reply.status}"}}).encode()
                elif req.provider == "anthropic":
                    data = json.dumps({
                        "id": "msg_1", "type": "message", "role": "assistant", "model": req.body.get("model"),
                        "content": [{"type": "text", "text": reply.text}], "stop_reason": "end_turn",
                        "usage": {"input_tokens": reply.usage[0], "output_tokens": reply.usage[1]},
                    }).encode()
                else:
                    data = json.dumps({
                        "id": "c1", "object": "chat.completion", "model": req.body.get("model"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": reply.text}}],
                        "usage": {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
                                  "total_tokens": sum(reply.usage)},
                    }).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> "FakeLLM":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":  # serve the default rules, e.g. for the worked example in docs/evals.md
    import argparse

    parser = argparse.ArgumentParser(description="the fake chat server of the tests, on a loopback port")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    fake = FakeLLM(port=parser.parse_args().port)
    print(fake.openai_url, flush=True)
    fake.server.serve_forever()
