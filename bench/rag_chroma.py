"""The chromadb side of ``bench/rag.py``; runs inside the bench's own venv (chromadb is not an
Ember dependency). Reads vectors and queries from an ``.npz``, writes rankings and latencies
as JSON. Same vectors as Ember (multilingual-e5-small from Ember's store), cosine space,
HNSW defaults."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time

import chromadb
import numpy as np


def main(npz_path: str, out_path: str, k: int) -> None:
    data = np.load(npz_path)
    ids = [str(int(i)) for i in data["ids"]]
    vectors = data["vectors"].astype(np.float32)
    queries = data["queries"].astype(np.float32)
    client = chromadb.PersistentClient(path=tempfile.mkdtemp(prefix="chroma-bench-"))
    collection = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
    started = time.perf_counter()
    batch = 5000
    for start in range(0, len(ids), batch):
        collection.add(ids=ids[start : start + batch], embeddings=vectors[start : start + batch])
    add_seconds = time.perf_counter() - started
    collection.query(query_embeddings=queries[:1], n_results=k)  # warm-up
    rankings, latencies = [], []
    for query in queries:
        t0 = time.perf_counter()
        result = collection.query(query_embeddings=query[None, :], n_results=k, include=[])
        latencies.append((time.perf_counter() - t0) * 1000)
        rankings.append([int(i) for i in result["ids"][0]])
    with open(out_path, "w") as out:
        json.dump(
            {
                "rankings": rankings,
                "p50_ms": statistics.median(latencies),
                "add_seconds": add_seconds,
                "version": chromadb.__version__,
            },
            out,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
