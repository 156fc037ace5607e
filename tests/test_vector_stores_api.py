"""``/v1/vector_stores`` through the real server with the official client.

A folder of mixed formats (Chinese and English) is batch-ingested once per module; searches,
filters, thresholds, statuses and errors are checked against it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import RunningServer, client_for, start_server, stop_server
from tests.ground_docs import FACTS, write_documents

CONFIG = "preload = []\nn_threads = 2\n"
LANG = {"panda.md": "zh", "tea.html": "zh", "cities.csv": "zh"}


@pytest.fixture(scope="module")
def vs_server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("ember-vs"), backend + CONFIG)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def vs_client(vs_server: RunningServer) -> Iterator[openai.OpenAI]:
    with client_for(vs_server) as client:
        yield client


@pytest.fixture(scope="module")
def corpus(vs_client: openai.OpenAI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    paths = write_documents(tmp_path_factory.mktemp("docs"))
    ids = {
        name: vs_client.files.create(file=path, purpose="assistants").id
        for name, path in paths.items()
    }
    store = vs_client.vector_stores.create(name="mixed", metadata={"team": "qa"})
    batch = vs_client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id,
        files=[
            {"file_id": file_id, "attributes": {"lang": LANG.get(name, "en"), "year": 2020 + i}}
            for i, (name, file_id) in enumerate(ids.items())
        ],
        poll_interval_ms=200,
    )
    return {"store": store, "ids": ids, "names": {v: k for k, v in ids.items()}, "batch": batch}


def test_batch_ingests_every_format(vs_client: openai.OpenAI, corpus: dict[str, Any]) -> None:
    batch = corpus["batch"]
    assert batch.status == "completed"
    assert batch.file_counts.completed == len(FACTS) and batch.file_counts.failed == 0
    store = vs_client.vector_stores.retrieve(corpus["store"].id)
    assert store.status == "completed" and store.file_counts.completed == len(FACTS)
    assert store.usage_bytes > 0 and store.metadata == {"team": "qa"}
    listed = vs_client.vector_stores.files.list(vector_store_id=store.id, filter="completed")
    assert {f.id for f in listed} == set(corpus["ids"].values())
    for item in listed:
        assert item.object == "vector_store.file" and item.last_error is None
        assert item.chunking_strategy.type == "static"  # type: ignore[union-attr]
    batch_files = vs_client.vector_stores.file_batches.list_files(
        batch_id=batch.id, vector_store_id=store.id
    )
    assert len(batch_files.data) == len(FACTS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("野生大熊猫有多少只？", "panda.md"),
        ("龙井茶的产地在哪里", "tea.html"),
        ("How often should the Zephyr-9 pump be descaled?", "manual.pdf"),
        ("What was Northwind's revenue in 2023?", "report.docx"),
        ("拉萨的人口 population of Lhasa", "cities.csv"),
        ("which port does billing-gateway listen on", "service.json"),
        ("How does Rust guarantee memory safety?", "rust.txt"),
    ],
)
def test_search_finds_the_right_file(
    vs_client: openai.OpenAI, corpus: dict[str, Any], query: str, expected: str
) -> None:
    page = vs_client.vector_stores.search(
        vector_store_id=corpus["store"].id, query=query, max_num_results=3
    )
    assert page.data, query
    top = page.data[0]
    assert corpus["names"][top.file_id] == expected
    assert top.filename == expected
    assert FACTS[expected] in top.content[0].text
    assert 0 < top.score <= 1
    assert len(page.data) <= 3


def test_search_reports_page_and_heading(vs_client: openai.OpenAI, corpus: dict[str, Any]) -> None:
    page = vs_client.vector_stores.search(
        vector_store_id=corpus["store"].id, query="Zephyr-9 descaled 90 days", max_num_results=1
    )
    extra = page.model_extra["ember"]["results"][0]  # type: ignore[index]
    assert extra["page"] == 2
    assert page.has_more  # the corpus has more than one chunk
    everything = vs_client.vector_stores.search(
        vector_store_id=corpus["store"].id, query="Zephyr-9 descaled 90 days", max_num_results=50
    )
    assert len(everything.data) < 50 and not everything.has_more
    page = vs_client.vector_stores.search(
        vector_store_id=corpus["store"].id, query="野生大熊猫数量", max_num_results=1
    )
    assert page.model_extra["ember"]["results"][0]["heading"] == "数量"  # type: ignore[index]


def test_filters_and_threshold(vs_client: openai.OpenAI, corpus: dict[str, Any]) -> None:
    store_id = corpus["store"].id
    only_en = vs_client.vector_stores.search(
        vector_store_id=store_id,
        query="野生大熊猫有多少只？",
        filters={"type": "eq", "key": "lang", "value": "en"},
    )
    assert only_en.data and all(
        LANG.get(corpus["names"][d.file_id], "en") == "en" for d in only_en.data
    )
    compound = vs_client.vector_stores.search(
        vector_store_id=store_id,
        query="tea panda pump revenue",
        filters={
            "type": "and",
            "filters": [
                {"type": "eq", "key": "lang", "value": "zh"},
                {"type": "gte", "key": "year", "value": 2021},
            ],
        },
    )
    names = {corpus["names"][d.file_id] for d in compound.data}
    assert names and names <= {"tea.html", "cities.csv"}
    either = vs_client.vector_stores.search(
        vector_store_id=store_id,
        query="information",
        filters={
            "type": "or",
            "filters": [
                {"type": "in", "key": "lang", "value": ["xx"]},
                {"type": "lt", "key": "year", "value": 2021},
            ],
        },
    )
    assert {corpus["names"][d.file_id] for d in either.data} == {"panda.md"}
    strict = vs_client.vector_stores.search(
        vector_store_id=store_id,
        query="野生大熊猫有多少只？",
        ranking_options={"score_threshold": 0.999},
    )
    assert strict.data == []


def test_bm25_and_vector_modes(vs_client: openai.OpenAI, corpus: dict[str, Any]) -> None:
    for mode in ("bm25", "vector"):
        page = vs_client.vector_stores.search(
            vector_store_id=corpus["store"].id,
            query="龙井茶产地",
            max_num_results=2,
            extra_body={"ember": {"retrieval": mode}},
        )
        assert corpus["names"][page.data[0].file_id] == "tea.html"
        assert all(r["retrievers"] == [mode] for r in page.model_extra["ember"]["results"])  # type: ignore[index]


def test_bad_files_fail_with_last_error(vs_client: openai.OpenAI, corpus: dict[str, Any]) -> None:
    store = vs_client.vector_stores.create(name="errors")
    binary = vs_client.files.create(
        file=("image.png", io.BytesIO(b"\x89PNG\r\n")), purpose="assistants"
    )
    broken = vs_client.files.create(
        file=("broken.pdf", io.BytesIO(b"%PDF-1.4 garbage")), purpose="assistants"
    )
    original = vs_client.files.create(
        file=("a.txt", io.BytesIO("同样的内容。".encode())), purpose="assistants"
    )
    copy = vs_client.files.create(
        file=("b.txt", io.BytesIO("同样的内容。".encode())), purpose="assistants"
    )
    batch = vs_client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id,
        file_ids=[binary.id, broken.id, original.id, copy.id],
        poll_interval_ms=200,
    )
    assert batch.file_counts.failed == 3 and batch.file_counts.completed == 1
    errors = {
        f.id: f.last_error
        for f in vs_client.vector_stores.files.list(vector_store_id=store.id)
        if f.status == "failed"
    }
    assert errors[binary.id].code == "unsupported_file"  # type: ignore[union-attr]
    assert errors[broken.id].code == "unsupported_file"  # type: ignore[union-attr]
    assert errors[copy.id].code == "invalid_file"  # type: ignore[union-attr]
    assert original.id in errors[copy.id].message  # type: ignore[union-attr]


def test_static_chunking_sizes(vs_client: openai.OpenAI) -> None:
    text = "".join(f"第{i}句话讲的是一个很长的故事，里面有许多细节和人物。" for i in range(60))
    uploaded = vs_client.files.create(
        file=("long.txt", io.BytesIO(text.encode())), purpose="assistants"
    )
    store = vs_client.vector_stores.create(name="chunks")
    counts = {}
    for size, overlap in ((100, 0), (400, 100)):
        other = vs_client.vector_stores.create(name=f"chunks-{size}")
        vs_client.vector_stores.files.create_and_poll(
            vector_store_id=other.id,
            file_id=uploaded.id,
            chunking_strategy={
                "type": "static",
                "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap},
            },
            poll_interval_ms=200,
        )
        chunks = list(
            vs_client.vector_stores.files.content(file_id=uploaded.id, vector_store_id=other.id)
        )
        counts[size] = len(chunks)
        for chunk in chunks:
            assert chunk.text.endswith("。")  # cut at sentence ends
    assert counts[100] > counts[400] >= 2
    with pytest.raises(openai.BadRequestError) as caught:
        vs_client.vector_stores.files.create(
            vector_store_id=store.id,
            file_id=uploaded.id,
            chunking_strategy={
                "type": "static",
                "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150},
            },
        )
    assert caught.value.body["param"] == "chunking_strategy.static.chunk_overlap_tokens"  # type: ignore[index]


def test_use_moves_expiry_anchored_on_last_activity(vs_client: openai.OpenAI) -> None:
    store = vs_client.vector_stores.create(
        name="expiring", expires_after={"anchor": "last_active_at", "days": 2}
    )
    assert store.expires_at == store.last_active_at + 2 * 86400
    time.sleep(1.1)  # timestamps are whole seconds
    vs_client.vector_stores.search(vector_store_id=store.id, query="anything")
    used = vs_client.vector_stores.retrieve(store.id)
    assert used.last_active_at is not None and used.last_active_at > store.last_active_at
    assert used.expires_at == used.last_active_at + 2 * 86400
    vs_client.vector_stores.delete(store.id)


def test_an_expired_store_keeps_its_data_but_cannot_be_used_or_revived(
    vs_server: RunningServer, vs_client: openai.OpenAI, corpus: dict[str, Any]
) -> None:
    store = vs_client.vector_stores.create(
        name="lapsed", expires_after={"anchor": "last_active_at", "days": 1}
    )
    vs_client.vector_stores.files.create_and_poll(
        vector_store_id=store.id, file_id=corpus["ids"]["rust.txt"], poll_interval_ms=200
    )
    # A day without activity, as the server's clock will see it.
    vs_server.sql(
        "UPDATE vector_stores SET expires_at = :expires, last_active_at = :active WHERE id = :id",
        {"expires": int(time.time()) - 5, "active": int(time.time()) - 86405, "id": store.id},
    )
    expired = vs_client.vector_stores.retrieve(store.id)
    assert expired.status == "expired" and expired.file_counts.completed == 1
    with pytest.raises(openai.BadRequestError) as caught:
        vs_client.vector_stores.search(vector_store_id=store.id, query="Rust")
    assert caught.value.body["code"] == "vector_store_expired"  # type: ignore[index]
    assert caught.value.body["param"] == "vector_store_id"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        vs_client.vector_stores.files.create(
            vector_store_id=store.id, file_id=corpus["ids"]["panda.md"]
        )
    with pytest.raises(openai.BadRequestError):
        vs_client.responses.create(
            model="default",
            input="What is Rust?",
            tools=[{"type": "file_search", "vector_store_ids": [store.id]}],
        )
    # Refused use did not move the expiry, and nothing stored was lost.
    again = vs_client.vector_stores.retrieve(store.id)
    assert again.status == "expired" and again.expires_at == expired.expires_at
    listed = vs_client.vector_stores.files.list(vector_store_id=store.id)
    assert [f.id for f in listed.data] == [corpus["ids"]["rust.txt"]]
    assert vs_client.vector_stores.delete(store.id).deleted


def test_store_crud_and_errors(vs_client: openai.OpenAI, corpus: dict[str, Any]) -> None:
    store = vs_client.vector_stores.create(
        name="crud", expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert store.expires_at is not None and store.status == "completed"
    updated = vs_client.vector_stores.update(
        vector_store_id=store.id, name="renamed", metadata={"k": "v"}
    )
    assert updated.name == "renamed" and updated.metadata == {"k": "v"}
    assert store.id in [s.id for s in vs_client.vector_stores.list(limit=100)]
    file_id = corpus["ids"]["rust.txt"]
    attached = vs_client.vector_stores.files.create_and_poll(
        vector_store_id=store.id, file_id=file_id, attributes={"a": 1}, poll_interval_ms=200
    )
    assert attached.status == "completed"
    changed = vs_client.vector_stores.files.update(
        vector_store_id=store.id, file_id=file_id, attributes={"a": 2}
    )
    assert changed.attributes == {"a": 2}
    assert vs_client.vector_stores.files.delete(vector_store_id=store.id, file_id=file_id).deleted
    assert vs_client.vector_stores.search(vector_store_id=store.id, query="Rust").data == []
    assert vs_client.vector_stores.delete(store.id).deleted
    for call in (
        lambda: vs_client.vector_stores.retrieve(store.id),
        lambda: vs_client.vector_stores.search(vector_store_id="vs_nope", query="x"),
        lambda: vs_client.vector_stores.files.create(
            vector_store_id=corpus["store"].id, file_id="file-nope"
        ),
        lambda: vs_client.vector_stores.file_batches.retrieve(
            batch_id="vsfb_nope", vector_store_id=corpus["store"].id
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    bad_filters: list[Any] = [
        {"type": "near", "key": "lang", "value": "zh"},
        {"type": "and", "filters": []},
        {"type": "in", "key": "lang", "value": "zh"},
    ]
    for bad in bad_filters:
        with pytest.raises(openai.BadRequestError):
            vs_client.vector_stores.search(
                vector_store_id=corpus["store"].id, query="x", filters=bad
            )
    with pytest.raises(openai.BadRequestError):
        vs_client.vector_stores.search(
            vector_store_id=corpus["store"].id, query="x", max_num_results=51
        )


def test_chunks_and_vectors_stay_in_the_database(
    vs_server: RunningServer, corpus: dict[str, Any]
) -> None:
    count = "SELECT COUNT(*) FROM {}"
    assert vs_server.sql(count.format("chunks"))[0][0] > 0
    assert vs_server.sql(count.format("chunk_vectors_384")) == vs_server.sql(count.format("chunks"))
    assert not [
        p for p in Path(vs_server.home).iterdir() if p.suffix in (".bin", ".index", ".parquet")
    ]
