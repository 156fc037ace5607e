"""Ember in front of three vLLM servers: the real server, the official openai client, and
three fake vLLMs (``tests/fake_vllm.py``, real HTTP servers on loopback) behind one route.

Requests spread by load, a server whose ``/health`` fails (or that drops the model) leaves
rotation and comes back, a killed server fails over with no error the client sees, and a
vLLM 400 reaches the client as OpenAI's 400. Each test routes to its own model names, so
the targets' health (breakers, latency) of one test does not steer another.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.conftest import RunningServer, client_for, fake_config, start_server, stop_server
from tests.fake_vllm import FakeVLLM

MODELS = ("m1", "m2", "m3", "m4", "m5")
ROUTES = {"spread": "m1", "health": "m2", "failover": "m3", "refused": "m4", "dropped": "m5"}
NAMES = ("gpu-a", "gpu-b", "gpu-c")


def gateway_config(servers: dict[str, FakeVLLM]) -> str:
    tables = ["[cache]\nenabled = false\n"]
    for name, server in servers.items():
        tables.append(
            f'[providers.{name}]\nbase_url = "{server.base_url}"\n'
            "health_check_s = 0.2\ntimeout_s = 5.0\n"
        )
    for route, model in ROUTES.items():
        targets = ", ".join(f'"{name}/{model}"' for name in servers)
        tables.append(f'[routes.{route}]\ntargets = [{targets}]\nbalance = "load"\nretries = 1\n')
    return fake_config() + "\n" + "\n".join(tables)


@pytest.fixture(scope="module")
def fleet() -> Iterator[dict[str, FakeVLLM]]:
    servers = {name: FakeVLLM(*MODELS).start() for name in NAMES}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, fleet: dict[str, FakeVLLM]
) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("vllm-gateway"), gateway_config(fleet))
    yield server
    stop_server(server)


@pytest.fixture()
def vllms(fleet: dict[str, FakeVLLM]) -> Iterator[dict[str, FakeVLLM]]:
    for server in fleet.values():
        server.reset()
        server.served = set(MODELS)
    yield fleet
    for server in fleet.values():
        if server.thread is not None and not server.thread.is_alive():  # a test killed it
            server.revive()


@pytest.fixture(scope="module")
def client(gateway: RunningServer) -> Iterator[openai.OpenAI]:
    opened = client_for(gateway)
    yield opened
    opened.close()


def ask(client: openai.OpenAI, route: str, **kwargs: object) -> str:
    """One request; the target that served it (from ``x-ember-route``)."""
    raw = client.chat.completions.with_raw_response.create(
        model=route,
        messages=[{"role": "user", "content": "Say hi"}],
        **{"max_tokens": 16, **kwargs},  # type: ignore[arg-type]
    )
    assert raw.parse().choices[0].message.content.startswith("echo:Say hi")
    return raw.headers["x-ember-route"]


def closed_loop(client: openai.OpenAI, route: str, workers: int, each: int) -> list[str]:
    """``workers`` clients, each sending ``each`` requests one after another."""

    def worker(_: int) -> list[str]:
        return [ask(client, route) for _ in range(each)]

    with ThreadPoolExecutor(workers) as pool:
        return [header for headers in pool.map(worker, range(workers)) for header in headers]


def served_by(headers: list[str], name: str) -> int:
    return sum(header.startswith(f"{name}/") for header in headers)


def target_up(gateway: RunningServer, target: str) -> float | None:
    metrics = httpx.get(f"{gateway.base_url}/metrics", timeout=10).text
    found = re.search(rf'^ember_route_target_up{{target="{target}"}} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else None


def wait_until_up(gateway: RunningServer, target: str, up: float, within_s: float = 10) -> float:
    """Seconds until ``/metrics`` reports ``target`` as ``up`` (fails after ``within_s``)."""
    started = time.monotonic()
    while target_up(gateway, target) != up:
        assert time.monotonic() - started < within_s, f"{target} never became up={up}"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_slow_server_gets_fewer_requests(
    gateway: RunningServer, client: openai.OpenAI, vllms: dict[str, FakeVLLM]
) -> None:
    vllms["gpu-c"].latency_s = 0.5
    headers = closed_loop(client, "spread", workers=6, each=6)
    counts = {name: served_by(headers, name) for name in NAMES}
    assert sum(counts.values()) == 36
    assert counts["gpu-c"] < counts["gpu-a"] / 2 and counts["gpu-c"] < counts["gpu-b"] / 2, counts
    assert all("least load" in header for header in headers)


@pytest.mark.parametrize(("route", "failure"), [("health", "health 503"), ("dropped", "model")])
def test_a_failing_server_leaves_rotation_and_comes_back(
    gateway: RunningServer,
    client: openai.OpenAI,
    vllms: dict[str, FakeVLLM],
    route: str,
    failure: str,
) -> None:
    target = f"gpu-b/{ROUTES[route]}"
    wait_until_up(gateway, target, 1.0)
    if failure == "health 503":
        vllms["gpu-b"].healthy = False  # chat still answers: only the check can tell
    else:
        vllms["gpu-b"].served = set(MODELS) - {ROUTES[route]}
    assert wait_until_up(gateway, target, 0.0) < 5  # a few 0.2 s intervals, on a busy machine
    vllms["gpu-b"].received.clear()
    headers = closed_loop(client, route, workers=4, each=4)
    assert served_by(headers, "gpu-b") == 0 and vllms["gpu-b"].received == []
    assert all("health check failed" in header for header in headers)

    vllms["gpu-b"].healthy, vllms["gpu-b"].served = True, set(MODELS)
    wait_until_up(gateway, target, 1.0)
    headers = closed_loop(client, route, workers=6, each=4)
    assert served_by(headers, "gpu-b") > 0


def test_a_killed_server_fails_over_with_no_error(
    gateway: RunningServer, client: openai.OpenAI, vllms: dict[str, FakeVLLM]
) -> None:
    closed_loop(client, "failover", workers=3, each=2)  # every server has served the route
    vllms["gpu-a"].kill()
    # At once, before a health check notices: connection refused, the next target serves.
    headers = closed_loop(client, "failover", workers=3, each=4)
    stream = client.chat.completions.create(
        model="failover",
        messages=[{"role": "user", "content": "Stream please"}],
        max_tokens=8,
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("echo:Stream please")
    assert served_by(headers, "gpu-a") == 0
    wait_until_up(gateway, "gpu-a/m3", 0.0)
    vllms["gpu-a"].revive()
    wait_until_up(gateway, "gpu-a/m3", 1.0)
    headers = closed_loop(client, "failover", workers=6, each=4)
    assert served_by(headers, "gpu-a") > 0  # back in rotation


@pytest.mark.parametrize("stream", [False, True])
def test_a_vllm_400_is_openai_400(
    gateway: RunningServer, client: openai.OpenAI, vllms: dict[str, FakeVLLM], stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        created = client.chat.completions.create(
            model="refused",
            messages=[{"role": "user", "content": "Say hi"}],
            max_tokens=100_000,
            stream=stream,
        )
        if stream:
            list(created)  # type: ignore[arg-type]
    assert refused.value.status_code == 400
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "upstream_rejected"
    assert "maximum context length is 512 tokens" in error["message"]
    assert sum(len(server.received) for server in vllms.values()) == 1  # not failed over
