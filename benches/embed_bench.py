#!/usr/bin/env python3
"""Embedding and ranking benchmark: pg_interest inside Postgres vs. a Python
onnxruntime + tokenizers pipeline on the same model, texts and thread counts.

Run through benches/embed_bench.sh, which starts the server and passes
PGHOST/PGPORT, the model directory and the MovieLens directory.
"""
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

MODEL_DIR, ML_DIR = sys.argv[1], sys.argv[2]
BATCH = 32


def psql(sql, *, settings=""):
    """Runs SQL in a new backend; returns (stdout, seconds for the last statement)."""
    script = f"{settings}\n\\timing on\n{sql}\n"
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"], input=script,
                         capture_output=True, text=True, check=True).stdout
    times = [float(l.split()[1]) for l in out.splitlines() if l.startswith("Time: ")]
    rows = [l for l in out.splitlines() if not l.startswith("Time: ")]
    return rows, times


def item_texts():
    texts = []
    with open(f"{ML_DIR}/ml-100k.item", encoding="utf-8", errors="replace") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            title, year, genres = parts[1], parts[2], parts[3]
            texts.append(f"{title} ({year}) {genres.replace(' ', ', ')}")
    return texts


def python_pipeline(texts, threads):
    tok = Tokenizer.from_file(f"{MODEL_DIR}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(max_length=256)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(f"{MODEL_DIR}/model.onnx", opts, providers=["CPUExecutionProvider"])
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    start = time.perf_counter()
    out = [None] * len(texts)
    for b in range(0, len(order), BATCH):
        idx = order[b:b + BATCH]
        encs = [tok.encode(texts[i]) for i in idx]
        seq = max(len(e.ids) for e in encs)
        ids = np.zeros((len(idx), seq), np.int64)
        mask = np.zeros((len(idx), seq), np.int64)
        for r, e in enumerate(encs):
            ids[r, :len(e.ids)] = e.ids
            mask[r, :len(e.ids)] = 1
        (hidden,) = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / m.sum(1)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        for r, i in enumerate(idx):
            out[i] = pooled[r]
    return time.perf_counter() - start


def main():
    texts = item_texts()
    n = len(texts)
    print(f"setup: {n} MovieLens-100K item texts (title, year, genres), model all-MiniLM-L6-v2 int8, "
          f"batch {BATCH}, padding per batch; machine: {os.cpu_count()} cores")
    psql("DROP TABLE IF EXISTS bench_items; CREATE TABLE bench_items (id int, body text);")
    with open("/tmp/pg_interest_bench_items.tsv", "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(f"{i + 1}\t{t.replace(chr(92), chr(92) * 2)}\n")
    psql("\\copy bench_items FROM '/tmp/pg_interest_bench_items.tsv'")

    # First call in a fresh backend: loads ONNX Runtime and the model.
    _, t = psql("SELECT interest.dims(interest.embed('first call'));")
    first_call_ms = t[0]
    rows, _ = psql("SELECT interest.dims(interest.embed('x')); SELECT pg_backend_pid();\n"
                   "SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\\s+(\\d+)'))[1];")
    rss_mb = int(rows[-1]) / 1024

    results = []
    for threads in (1, 2):
        settings = f"SET interest.intra_op_threads = {threads};\nSELECT interest.dims(interest.embed('warm up'));"
        runs = []
        for _ in range(3):
            _, t = psql("SELECT count(*) FROM unnest(interest.embed(ARRAY(SELECT body FROM bench_items ORDER BY id)));",
                        settings=settings)
            runs.append(t[-1] / 1000)
        pg_s = min(runs)
        py_runs = [python_pipeline(texts, threads) for _ in range(3)]
        py_s = min(py_runs)
        results.append((threads, n / pg_s, n / py_s))

    print()
    print("embedding 1,682 texts in one statement (best of 3)")
    print(f"{'threads':>8} {'pg_interest texts/s':>20} {'python ort texts/s':>20} {'ratio':>7}")
    for threads, pg_rate, py_rate in results:
        print(f"{threads:>8} {pg_rate:>20.0f} {py_rate:>20.0f} {pg_rate / py_rate:>7.2f}")
    print(f"first-call latency (new backend, loads ONNX Runtime + model): {first_call_ms:.0f} ms")
    print(f"backend RSS after the model is loaded: {rss_mb:.0f} MB")

    # Ranking: ORDER BY e <=> q LIMIT 10 over 100,000 random 384-d rows (sequential scan).
    psql("DROP TABLE IF EXISTS bench_vectors;\n"
         "CREATE TABLE bench_vectors AS SELECT i AS id, "
         "(SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384) WHERE i > 0)::interest.embedding AS e "
         "FROM generate_series(1, 100000) i;\nVACUUM ANALYZE bench_vectors;")
    q = "(SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384))::interest.embedding"
    times = []
    for _ in range(7):
        _, t = psql(f"SELECT id FROM bench_vectors ORDER BY e OPERATOR(interest.<=>) (SELECT {q}) LIMIT 10;",
                    settings="SET max_parallel_workers_per_gather = 0;")
        times.append(t[-1])
    times_par = []
    for _ in range(7):
        _, t = psql(f"SELECT id FROM bench_vectors ORDER BY e OPERATOR(interest.<=>) (SELECT {q}) LIMIT 10;")
        times_par.append(t[-1])
    print()
    print("ORDER BY e <=> q LIMIT 10 over 100,000 random 384-d rows (exact scan, median of 7)")
    print(f"  1 process:          {statistics.median(times):.1f} ms")
    print(f"  parallel (default): {statistics.median(times_par):.1f} ms")


if __name__ == "__main__":
    main()
