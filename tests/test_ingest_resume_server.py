"""The server's background ingestion: killed mid-file, restarted, it resumes on its own."""

from __future__ import annotations

import io
import signal
import time
from pathlib import Path

import sqlean

from tests.conftest import client_for, start_server, stop_server

CONFIG = "preload = []\nn_threads = 2\n"


def _chunk_count(home: Path) -> int:
    db = sqlean.connect(str(home / "ember.db"), timeout=10)
    try:
        return int(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
    except sqlean.OperationalError:
        return 0
    finally:
        db.close()


def test_server_resumes_ingestion_after_a_kill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    text = "".join(
        f"第{i}条记录：设备编号{1000 + i}的巡检周期为{i % 7 + 1}天。" for i in range(400)
    )
    server = start_server(home, CONFIG)
    try:
        with client_for(server) as client:
            uploaded = client.files.create(
                file=("records.txt", io.BytesIO(text.encode())), purpose="assistants"
            )
            store = client.vector_stores.create(name="resume")
            client.vector_stores.files.create(
                vector_store_id=store.id,
                file_id=uploaded.id,
                chunking_strategy={
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20},
                },
            )
            deadline = time.monotonic() + 120
            while _chunk_count(home) == 0:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
    finally:
        server.log_file.close()
    assert _chunk_count(home) > 0
    db = sqlean.connect(str(home / "ember.db"))
    status = db.execute("SELECT status FROM vector_store_files").fetchone()[0]
    db.close()
    assert status == "in_progress"  # killed in the middle of the file

    restarted = start_server(home, CONFIG)
    try:
        with client_for(restarted) as client:
            assert client.vector_stores.files.retrieve(
                vector_store_id=store.id, file_id=uploaded.id
            ).status in ("in_progress", "completed")
            deadline = time.monotonic() + 300
            while (
                client.vector_stores.files.retrieve(
                    vector_store_id=store.id, file_id=uploaded.id
                ).status
                == "in_progress"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.3)
            resumed = [
                c.text
                for c in client.vector_stores.files.content(
                    vector_store_id=store.id, file_id=uploaded.id
                )
            ]
            clean_store = client.vector_stores.create(name="clean")
            client.vector_stores.files.create_and_poll(
                vector_store_id=clean_store.id,
                file_id=uploaded.id,
                chunking_strategy={
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20},
                },
                poll_interval_ms=300,
            )
            clean = [
                c.text
                for c in client.vector_stores.files.content(
                    vector_store_id=clean_store.id, file_id=uploaded.id
                )
            ]
            assert resumed == clean and len(clean) > 10
            hits = client.vector_stores.search(
                vector_store_id=store.id, query="设备编号1399的巡检周期", max_num_results=1
            )
            assert "1399" in hits.data[0].content[0].text
    finally:
        stop_server(restarted)
