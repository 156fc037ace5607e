"""A job's result file: its step metrics and learning check as CSV (OpenAI's result file is
a CSV of step metrics too; ``valid_*`` columns hold the learning check, before training on
step 0 and after it on the last step)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

COLUMNS = (
    "step",
    "train_loss",
    "learning_rate",
    "tokens_per_second",
    "valid_loss",
    "valid_perplexity",
    "valid_exact_match",
    "train_exact_match",
    "valid_preference_margin",
    "valid_preference_accuracy",
)


def _check_columns(scores: dict[str, Any] | None) -> dict[str, Any]:
    if not scores:
        return {}

    def rate(key: str) -> Any:
        value = scores.get(key)
        return value["rate"] if value else ""

    return {
        "valid_loss": scores.get("loss", ""),
        "valid_perplexity": scores.get("perplexity", ""),
        "valid_exact_match": rate("exact_match"),
        "train_exact_match": rate("train_exact_match"),
        "valid_preference_margin": scores.get("margin", ""),
        "valid_preference_accuracy": scores.get("accuracy", ""),
    }


def results_csv(step_metrics: Iterable[dict[str, Any]], job: dict[str, Any]) -> bytes:
    by_step = {int(m["step"]): m for m in step_metrics if "step" in m and "train_loss" in m}
    check = job.get("ember", {}).get("learning_check", {})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerow({"step": 0, **_check_columns(check.get("before"))})
    last = max(by_step, default=0)
    for step in sorted(by_step):
        row = {"step": step, **{k: by_step[step].get(k, "") for k in COLUMNS[1:4]}}
        if step == last:
            row.update(_check_columns(check.get("after")))
        writer.writerow(row)
    return out.getvalue().encode()
