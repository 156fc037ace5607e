"""``GET /v1/ember/files/{file_id}/pii``: the PII the guard finds in an uploaded document,
through the real server (``fake`` engine, no model), with two tenants' keys; and a vector
store's expiry as the console sets and lists it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import RunningServer, client_for, fake_config, start_server, stop_server

ADMIN = "admin-secret-for-pii-tests"
DOCUMENT = (
    "# Contact sheet\n\nMail ada@example.com or call +1 415-555-0100 about the lease.\n"
    "备用联系人手机号 13812345678，邮箱 bo@example.org。\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("document-pii"), fake_config(f'admin_key = "{ADMIN}"')
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def keys(server: RunningServer) -> dict[str, str]:
    made = {}
    for name in ("owner", "neighbour"):
        response = httpx.post(
            f"{server.v1}/ember/keys",
            json={"name": name},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        made[name] = response.json()["key"]
    return made


def pii(server: RunningServer, key: str, file_id: str) -> httpx.Response:
    return httpx.get(
        f"{server.v1}/ember/files/{file_id}/pii",
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )


def test_counts_and_findings_by_type_for_the_owner_only(
    server: RunningServer, keys: dict[str, str]
) -> None:
    with client_for(server, keys["owner"]) as client:
        uploaded = client.files.create(
            file=("contacts.md", DOCUMENT.encode()), purpose="assistants"
        )
    response = pii(server, keys["owner"], uploaded.id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "ember.file.pii" and body["file_id"] == uploaded.id
    assert body["filename"] == uploaded.filename
    assert body["entities"] == {"EMAIL": 2, "PHONE": 2}
    assert body["total"] == 4 and body["has_more"] is False
    found = {(f["type"], f["text"]) for f in body["findings"]}
    assert found == {
        ("EMAIL", "ada@example.com"),
        ("EMAIL", "bo@example.org"),
        ("PHONE", "+1 415-555-0100"),
        ("PHONE", "13812345678"),
    }
    assert {f["heading"] for f in body["findings"]} == {"Contact sheet"}
    # Another tenant's file does not exist for it; nor does a file that was never uploaded.
    hidden = pii(server, keys["neighbour"], uploaded.id)
    assert hidden.status_code == 404 and hidden.json()["error"]["param"] == "file_id"
    assert pii(server, keys["owner"], "file-nothing").status_code == 404


def test_a_file_without_pii_and_one_no_parser_reads(
    server: RunningServer, keys: dict[str, str]
) -> None:
    with client_for(server, keys["owner"]) as client:
        clean = client.files.create(
            file=("notes.txt", b"The lamp is lit at dusk."), purpose="assistants"
        )
        binary = client.files.create(file=("blob.bin", b"\x00\x01\x02"), purpose="assistants")
    body = pii(server, keys["owner"], clean.id).json()
    assert body["entities"] == {} and body["total"] == 0 and body["findings"] == []
    refused = pii(server, keys["owner"], binary.id)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "unsupported_file"


def test_a_vector_store_expiry_is_set_and_listed(
    server: RunningServer, keys: dict[str, str]
) -> None:
    with client_for(server, keys["owner"]) as client:
        store = client.vector_stores.create(
            name="short-lived", expires_after={"anchor": "last_active_at", "days": 7}
        )
        assert store.expires_after is not None and store.expires_after.days == 7
        assert store.expires_at is not None
        assert store.expires_at - (store.last_active_at or 0) == 7 * 86400
        listed = {s.id: s for s in client.vector_stores.list()}
        assert listed[store.id].expires_at == store.expires_at
        with pytest.raises(openai.BadRequestError) as bad:
            client.vector_stores.create(
                name="x", expires_after={"anchor": "last_active_at", "days": 0}
            )
    assert bad.value.body["param"] == "expires_after"  # type: ignore[index]
