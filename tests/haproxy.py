"""HAProxy (Debian's package) in front of Ember replicas: its configuration and binary, for
tests/test_replicas.py and bench/scale.py. It checks each replica's ``/readyz`` actively."""

from __future__ import annotations

import shutil


def find_haproxy() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if found is None:
        raise RuntimeError("haproxy is missing: `make test` installs it (apt-get install haproxy)")
    return found


def haproxy_config(port: int, replicas: list[str], *, check_every: str = "500ms") -> str:
    """Round robin on 127.0.0.1:``port`` over ``replicas`` (base URLs), each checked with
    ``GET /readyz`` every ``check_every``: two failures take it out, one success back."""
    servers = "\n".join(
        f"  server r{n} {base.removeprefix('http://')} check" for n, base in enumerate(replicas, 1)
    )
    return f"""global
  maxconn 1024
defaults
  mode http
  timeout connect 2s
  timeout client 300s
  timeout server 300s
  retries 2
  option redispatch
frontend ember
  bind 127.0.0.1:{port}
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /readyz
  default-server inter {check_every} fall 2 rise 1
{servers}
"""
