#!/usr/bin/env python3
"""Independent reference embeddings for pg_interest's correctness test.

Runs the same ONNX model with the onnxruntime and tokenizers Python packages and
its own numpy pooling (mean over the attention mask, then L2 normalisation),
one text at a time so that no padding is involved. Writes a tab-separated file
of (id, text, embedding literal) that tests/sql loads with COPY.

usage: make_embedding_fixtures.py MODEL_DIR OUT_TSV [MAX_TOKENS]
"""
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

TEXTS = [
    "",
    "a",
    "Toy Story (1995) Animation|Children's|Comedy",
    "GoldenEye (1995) Action|Adventure|Thriller",
    "The quick brown fox jumps over the lazy dog.",
    "I loved this movie, the soundtrack was fantastic!",
    "Worst purchase ever. Broke after two days.",
    "wireless noise-cancelling headphones with 30h battery",
    "How do I reset my password?",
    "PostgreSQL is an object-relational database system.",
    "Le chat est assis sur le tapis.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "El perro come una manzana roja en el parque.",
    "これは日本語の文章です。映画が大好きです。",
    "这是一部关于太空探索的科幻电影。",
    "Это книга о войне и мире.",
    "مرحبا بالعالم",
    "emoji test 🎬🍿 movie night!!!",
    "UPPER CASE AND lower case MiXeD",
    "1234567890 3.14159 2.71828",
    "   leading and trailing spaces   ",
    "tab\tseparated\nnew line text",
    # Long texts: beyond 256 word pieces, so truncation must match.
    " ".join(["recommendation systems learn user interests from implicit feedback"] * 60),
    " ".join(f"token{i}" for i in range(400)),
]


def main():
    model_dir, out_path = sys.argv[1], sys.argv[2]
    max_tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 256
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(f"{model_dir}/model.onnx", opts, providers=["CPUExecutionProvider"])
    with open(out_path, "w", encoding="utf-8") as out:
        for i, text in enumerate(TEXTS):
            enc = tok.encode(text)
            ids = np.array([enc.ids], dtype=np.int64)
            mask = np.array([enc.attention_mask], dtype=np.int64)
            types = np.array([enc.type_ids], dtype=np.int64)
            (hidden,) = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            vec = pooled[0] / np.linalg.norm(pooled[0])
            literal = "[" + ",".join(repr(float(x)) for x in vec) + "]"
            escaped = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            out.write(f"{i}\t{escaped}\t{len(enc.ids)}\t{literal}\n")
    print(f"wrote {len(TEXTS)} reference embeddings to {out_path}")


if __name__ == "__main__":
    main()
