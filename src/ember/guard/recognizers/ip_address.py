"""IP_ADDRESS: IPv4 and IPv6 addresses that ``ipaddress`` accepts; not version strings.

"v1.2.3.4" and "version 1.2.3.4" (or 版本) are versions, not addresses.
"""

from __future__ import annotations

import ipaddress

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register


@register
class IpAddressRecognizer(Recognizer):
    name = "ip_address"
    entity_type = "IP_ADDRESS"
    patterns = (
        Pattern("ipv4", r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)", 0.6),
        Pattern("ipv6", r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])", 0.6),
    )
    context = ("ip", "address", "host", "server", "地址", "服务器", "主机")
    negative_context = ("version", "ver.", "ver ", "release", "版本", "v.")

    def validate(self, value: str) -> bool | None:
        if ":" in value and sum(c.isalnum() for c in value) < 2:
            return False
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return None
