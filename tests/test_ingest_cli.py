"""``ember ingest``: killed midway and run again, it ends with no duplicate or missing chunk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlean
import sqlite_vec

CONFIG = "preload = []\nn_threads = 2\n"


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "EMBER_HOME": str(home), "EMBER_CONFIG": str(home / "ember.toml")}


def _ingest(home: Path, folder: Path, store: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ember", "ingest", str(folder), "--store", store],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _query(home: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    db = sqlean.connect(str(home / "ember.db"), timeout=10)
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def _chunks_by_file(home: Path, store: str) -> dict[str, list[tuple[int, str]]]:
    rows = _query(
        home,
        "SELECT f.filename, c.position, c.text FROM chunks c JOIN files f ON f.id = c.file_id"
        " JOIN vector_stores s ON s.id = c.vector_store_id WHERE s.name = ?"
        " ORDER BY f.filename, c.position",
        store,
    )
    out: dict[str, list[tuple[int, str]]] = {}
    for filename, position, text in rows:
        out.setdefault(str(filename), []).append((int(position), str(text)))  # type: ignore[call-overload]
    return out


def test_kill_and_resume_gives_the_same_chunks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "ember.toml").write_text(CONFIG)
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(4):
        sentences = [
            f"文件{n}的第{i}句：这里记录了编号为{n * 100 + i}的零件的检修要求和注意事项。"
            for i in range(30)
        ]
        (folder / f"part{n}.txt").write_text("".join(sentences))
    (folder / "notes.md").write_text(
        "# Notes\n" + " ".join(f"Line {i} of the notes." for i in range(40))
    )

    first = _ingest(home, folder, "resume")
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if (home / "ember.db").exists():
                try:
                    written = _query(home, "SELECT COUNT(*) FROM chunks")[0][0]
                except sqlean.OperationalError:
                    written = 0
                if written:  # type: ignore[operator]
                    break
            assert first.poll() is None, first.communicate()[0]
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait()
        assert first.stdout is not None
        first.stdout.close()
    states = dict(_query(home, "SELECT file_id, status FROM vector_store_files"))  # type: ignore[arg-type]
    assert "in_progress" in states.values(), states  # killed in the middle, not after

    second = _ingest(home, folder, "resume")
    output = second.communicate(timeout=600)[0]
    assert second.returncode == 0, output
    assert "completed" in output

    clean = _ingest(home, folder, "clean")
    assert clean.communicate(timeout=600)[0] and clean.returncode == 0

    resumed = _chunks_by_file(home, "resume")
    fresh = _chunks_by_file(home, "clean")
    assert set(resumed) == {"part0.txt", "part1.txt", "part2.txt", "part3.txt", "notes.md"}
    assert resumed == fresh  # same chunks, same positions: nothing duplicated or missing
    for chunks in resumed.values():
        assert [p for p, _ in chunks] == list(range(len(chunks)))
    assert sum(len(c) for c in resumed.values()) > 5
    # Files were uploaded once although `ember ingest` ran three times.
    assert _query(home, "SELECT COUNT(*) FROM files")[0][0] == 5
    assert {s for (s,) in _query(home, "SELECT status FROM vector_store_files")} == {"completed"}
    vectors = _query(home, "SELECT COUNT(*) FROM chunk_vectors_384")[0][0]
    assert vectors == _query(home, "SELECT COUNT(*) FROM chunks")[0][0]

    asked = subprocess.run(
        [
            sys.executable,
            "-m",
            "ember",
            "ask",
            "编号为105的零件",
            "--store",
            "resume",
            "--extractive",
        ],
        env=_env(home),
        capture_output=True,
        text=True,
    )
    assert asked.returncode == 0, asked.stderr
    assert "编号为105的零件" in asked.stdout and "part1.txt" in asked.stdout  # quote + citation

    listed = subprocess.run(
        [sys.executable, "-m", "ember", "stores", "list"],
        env=_env(home),
        capture_output=True,
        text=True,
    )
    assert "resume" in listed.stdout and "clean" in listed.stdout
    removed = subprocess.run(
        [sys.executable, "-m", "ember", "stores", "rm", "clean"],
        env=_env(home),
        capture_output=True,
        text=True,
    )
    assert removed.returncode == 0, removed.stderr
    assert _chunks_by_file(home, "clean") == {}
    assert _chunks_by_file(home, "resume") == resumed
