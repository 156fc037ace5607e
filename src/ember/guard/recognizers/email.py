"""EMAIL: addresses with a dotted domain and a real-looking top-level domain."""

from __future__ import annotations

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register


@register
class EmailRecognizer(Recognizer):
    name = "email"
    entity_type = "EMAIL"
    patterns = (
        Pattern(
            "email",
            r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
            r"(?![\w-])",
            0.9,
        ),
    )
    context = ("email", "e-mail", "mail", "邮箱", "邮件", "电邮")

    def validate(self, value: str) -> bool | None:
        local, _, domain = value.rpartition("@")
        if local.startswith(".") or local.endswith(".") or ".." in value:
            return False
        return (
            None
            if all(label and not label.startswith("-") for label in domain.split("."))
            else False
        )
