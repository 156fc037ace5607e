"""The in-memory dense index (exact and HNSW) and the retriever that keeps it in step with
the vectors stored in SQLite: ingest, delete, filters, a fresh process."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ember.ground import retrieval
from ember.ground.dense import DenseIndex
from ember.ground.lexical import terms
from ember.ground.retrieval import Retriever
from ember.store import Store
from ember.store.chunks import NewChunk

DIM = 32


def unit(rows: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    return [int(ids[i]) for i in np.argsort(-(vectors @ q), kind="stable")[:k]]


def test_exact_index_ranks_like_a_brute_force_scan() -> None:
    vectors, ids = unit(500, 1), np.arange(1000, 1500)
    index = DenseIndex(ids, vectors, "exact")
    for q in unit(10, 2):
        found = index.search(q, 7)
        assert [c for c, _ in found] == exact_top(vectors, ids, q, 7)
        best = found[0]
        assert best[1] == pytest.approx(1 - float(vectors[best[0] - 1000] @ q), abs=1e-5)


def test_hnsw_index_recall_and_filters() -> None:
    vectors, ids = unit(3000, 3), np.arange(1, 3001)
    index = DenseIndex(ids, vectors, "hnsw")
    assert index.kind == "hnsw"
    recall = 0.0
    queries = unit(30, 4)
    for q in queries:
        found = [c for c, _ in index.search(q, 10)]
        recall += len(set(found) & set(exact_top(vectors, ids, q, 10))) / 10
    assert recall / len(queries) >= 0.9
    # A filter keeping every third row: only allowed ids come back, k of them.
    allowed = ids % 3 == 0
    for q in queries[:5]:
        found = [c for c, _ in index.search(q, 5, allowed=allowed)]
        assert len(found) == 5 and all(c % 3 == 0 for c in found)
    # A narrow filter is searched exactly: the true top among the allowed rows.
    narrow = np.isin(ids, [5, 17, 2999])
    found = [c for c, _ in index.search(queries[0], 2, allowed=narrow)]
    assert found == exact_top(vectors[narrow], ids[narrow], queries[0], 2)


def test_hnsw_graph_follows_added_removed_and_changed_vectors() -> None:
    vectors, ids = unit(400, 5), np.arange(1, 401)
    first = DenseIndex(ids, vectors, "hnsw")
    # Drop ids 1..100, change the vector of 200, add 401..450.
    changed = vectors.copy()
    changed[199] = -changed[199]
    new_ids = np.concatenate([ids[100:], np.arange(401, 451)])
    new_vectors = np.concatenate([changed[100:], unit(50, 6)])
    second = DenseIndex(new_ids, new_vectors, "hnsw", previous=first)
    assert len(second) == 350
    recall = 0.0
    for q in unit(20, 7):
        found = [c for c, _ in second.search(q, 5)]
        assert len(found) == 5 and all(c > 100 for c in found)  # removed ids never return
        recall += len(set(found) & set(exact_top(new_vectors, new_ids, q, 5))) / 5
    assert recall / 20 >= 0.9  # HNSW is approximate (and its threaded build not deterministic)
    # The changed vector is found where it now points.
    assert second.search(-vectors[199], 1)[0][0] == 200


def _add_file(store: Store, store_id: str, file_id: str, texts: list[str], vectors: np.ndarray):
    store.vectors.add_file(
        {
            "vector_store_id": store_id,
            "file_id": file_id,
            "batch_id": None,
            "created_at": int(time.time()),
            "attributes": {"name": file_id},
            "chunking": {"type": "static"},
        }
    )
    chunks = [
        NewChunk(i, text, None, None, 10, " ".join(terms(text)), f"{file_id}-{i}")
        for i, text in enumerate(texts)
    ]
    assert store.chunks.insert_chunks(store_id, file_id, chunks, vectors)
    store.vectors.finish_file(store_id, file_id, "completed")


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_retriever_stays_in_step_with_the_database(database: str, kind: str) -> None:
    store = Store(database)
    try:
        store.vectors.create_store(
            {"id": "vs_a", "name": "a", "created_at": 0, "last_active_at": 0, "expires_at": None}
        )
        vectors = unit(60, 8)
        texts = [f"文档 {i} 讲述第 {i} 号产品的价格" for i in range(60)]
        _add_file(store, "vs_a", "file-a", texts[:30], vectors[:30])
        retriever = Retriever(store.chunks, vector_index=kind)  # type: ignore[arg-type]
        hits = retriever.search(["vs_a"], texts[3], vectors[3], k=3, mode="vector")
        assert hits[0].text == texts[3] and hits[0].score == pytest.approx(1.0, abs=1e-5)

        # Ingesting a second file: its chunks are found without any explicit refresh.
        _add_file(store, "vs_a", "file-b", texts[30:], vectors[30:])
        hits = retriever.search(["vs_a"], texts[45], vectors[45], k=3, mode="vector")
        assert hits[0].text == texts[45] and hits[0].file_id == "file-b"

        # A filter keeps results to the chosen file, in every mode.
        only_a = {"type": "eq", "key": "name", "value": "file-a"}
        for mode in ("vector", "bm25", "hybrid"):
            hits = retriever.search(
                ["vs_a"], texts[45], vectors[45], k=5, mode=mode, filters=only_a
            )
            assert hits and all(h.file_id == "file-a" for h in hits), mode

        # Deleting a file removes its chunks from the next search.
        store.vectors.delete_file("vs_a", "file-b")
        hits = retriever.search(["vs_a"], texts[45], vectors[45], k=5)
        assert hits and all(h.file_id == "file-a" for h in hits)

        # A fresh retriever (a restarted server, another replica) rebuilds from the database.
        again = Retriever(store.chunks, vector_index=kind)  # type: ignore[arg-type]
        hits = again.search(["vs_a"], texts[7], vectors[7], k=1, mode="vector")
        assert hits[0].text == texts[7]
        # score_threshold applies to the cosine score.
        strict = again.search(["vs_a"], texts[7], vectors[7], k=5, score_threshold=0.99)
        assert [h.chunk_id for h in strict] == [hits[0].chunk_id]
    finally:
        store.close()


def test_the_database_finds_nearest_chunks_within_one_store(database: str) -> None:
    """The vector tables themselves (sqlite-vec; pgvector with its HNSW index): nearest
    chunks stay inside the asked store, distances are cosine, deleting removes vectors."""
    store = Store(database)
    try:
        for store_id in ("vs_a", "vs_b"):
            store.vectors.create_store(
                {"id": store_id, "name": store_id, "created_at": 0, "last_active_at": 0}
                | {"expires_at": None}
            )
        vectors = unit(80, 11)
        texts = [f"passage {i}" for i in range(80)]
        _add_file(store, "vs_a", "file-a", texts[:40], vectors[:40])
        _add_file(store, "vs_b", "file-b", texts[40:], vectors[40:])
        ids_a = sorted(c["id"] for c in store.chunks.file_chunks("vs_a", "file-a"))
        for probe in (3, 17, 45):
            hits = store.chunks.nearest("vs_a", vectors[probe], 5)
            assert len(hits) == 5 and all(chunk in ids_a for chunk, _ in hits)
            want = exact_top(vectors[:40], np.array(ids_a), vectors[probe], 5)
            assert [chunk for chunk, _ in hits] == want
            assert [d for _, d in hits] == sorted(d for _, d in hits)
        first = store.chunks.distances(vectors[3], ids_a[:4])
        expected = [1 - float(vectors[i] @ vectors[3]) for i in range(4)]
        assert [first[i] for i in ids_a[:4]] == pytest.approx(expected, abs=1e-5)
        among = store.chunks.nearest("vs_a", vectors[3], 2, chunk_ids=ids_a[2:10])
        assert [chunk for chunk, _ in among] == [ids_a[3], *[c for c, _ in among[1:]]]
        stored_ids, stored = store.chunks.store_vectors("vs_b", DIM)
        assert len(stored_ids) == 40 and np.allclose(stored, vectors[40:], atol=1e-6)

        store.vectors.delete_file("vs_a", "file-a")
        assert store.chunks.nearest("vs_a", vectors[3], 5) == []
        assert len(store.chunks.nearest("vs_b", vectors[3], 5)) == 5
    finally:
        store.close()


def test_a_new_graph_is_built_in_the_background_while_searches_stay_exact(
    tmp_path: Path,
) -> None:
    """A store's first search does not wait for its HNSW graph: an exact index answers until
    the graph, built on a background thread, takes over; ``warm`` builds it ahead of time."""
    store = Store(tmp_path / "ember.db")
    try:
        store.vectors.create_store(
            {"id": "vs_b", "name": "b", "created_at": 0, "last_active_at": 0, "expires_at": None}
        )
        vectors = unit(2000, 9)
        texts = [f"chunk {i}" for i in range(2000)]
        _add_file(store, "vs_b", "file-a", texts, vectors)

        def kind_in_use(retriever: Retriever) -> str:
            index = retriever._index("vs_b")
            return index.dense[DIM][0].kind

        retriever = Retriever(store.chunks, vector_index="hnsw")
        hits = retriever.search(["vs_b"], "", vectors[11], k=3, mode="vector")
        assert hits[0].text == texts[11]
        deadline = time.monotonic() + 60
        while retriever.graphs_built < 1:
            assert time.monotonic() < deadline, "the background build never finished"
            time.sleep(0.05)
        assert kind_in_use(retriever) == "hnsw"
        again = retriever.search(["vs_b"], "", vectors[1234], k=3, mode="vector")
        assert again[0].text == texts[1234]

        warmed = Retriever(store.chunks, vector_index="hnsw")
        warmed.warm()
        while warmed.graphs_built < 1:
            assert time.monotonic() < deadline, "warm never built the graph"
            time.sleep(0.05)
        assert kind_in_use(warmed) == "hnsw"
        # Built synchronously when asked to (and where the graph is only updated).
        direct = Retriever(store.chunks, vector_index="hnsw", build_in_background=False)
        direct.search(["vs_b"], "", vectors[0], k=1, mode="vector")
        assert kind_in_use(direct) == "hnsw" and direct.graphs_built == 0
    finally:
        store.close()


def test_a_store_that_changes_while_its_graph_builds_is_not_built_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file ingested while a store's first graph is being built: searches stay exact (and
    see the new file) without starting a second build; once the graph is done, the next
    search updates it in place with the new chunks."""
    gate = threading.Event()
    fresh_builds: list[int] = []
    real = retrieval.DenseIndex

    def held_back(ids: Any, vectors: Any, kind: Any = "auto", *, previous: Any = None) -> Any:
        if kind != "exact" and previous is None:  # a graph built from nothing
            fresh_builds.append(len(ids))
            assert gate.wait(60)
        return real(ids, vectors, kind, previous=previous)

    monkeypatch.setattr(retrieval, "DenseIndex", held_back)
    store = Store(tmp_path / "ember.db")
    try:
        store.vectors.create_store(
            {"id": "vs_c", "name": "c", "created_at": 0, "last_active_at": 0, "expires_at": None}
        )
        vectors = unit(1100, 12)
        texts = [f"chunk {i}" for i in range(1100)]
        _add_file(store, "vs_c", "file-a", texts[:1000], vectors[:1000])
        retriever = Retriever(store.chunks, vector_index="hnsw")
        assert retriever.search(["vs_c"], "", vectors[5], k=1, mode="vector")[0].text == texts[5]
        _add_file(store, "vs_c", "file-b", texts[1000:], vectors[1000:])
        hits = retriever.search(["vs_c"], "", vectors[1050], k=1, mode="vector")
        assert hits[0].text == texts[1050] and hits[0].file_id == "file-b"
        assert fresh_builds == [1000]  # the change did not start a second build

        gate.set()
        deadline = time.monotonic() + 60
        while retriever.graphs_built < 1:
            assert time.monotonic() < deadline, "the background build never finished"
            time.sleep(0.05)
        hits = retriever.search(["vs_c"], "", vectors[1077], k=1, mode="vector")
        assert hits[0].text == texts[1077]
        assert retriever._index("vs_c").dense[DIM][0].kind == "hnsw"
        assert fresh_builds == [1000]  # updated in place, not built again
    finally:
        gate.set()
        store.close()


def test_llama_cpp_still_loads_models_after_an_hnsw_graph_exists() -> None:
    """The HNSW library must not break llama.cpp in the same process (usearch's static C++
    runtime did: std::bad_cast in the vocabulary loader)."""
    import llama_cpp

    from ember.models.embedded import embedded_models
    from ember.settings import Settings

    index = DenseIndex(np.arange(1, 201), unit(200, 10), "hnsw")
    assert index.kind == "hnsw" and index.search(unit(1, 11)[0], 3)
    spec = next(m for m in embedded_models() if m.id == "smollm2-135m-instruct")
    llama = llama_cpp.Llama(
        model_path=str(spec.resolve_path(Settings())), vocab_only=True, verbose=False
    )
    try:
        assert llama.tokenize(b"hello", add_bos=False)
    finally:
        llama.close()
