"""``"auto"`` hyperparameters, DPO preference lines, and the result file: no model needed."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ember.adapt import auto
from ember.adapt.preference import parse_preferences
from ember.adapt.results import results_csv
from ember.errors import InvalidTrainingDataError


def test_a_small_dataset_is_trained_long_and_hard_enough_to_be_learned() -> None:
    chosen = auto.choose(examples=36, tokens=36 * 58)
    assert chosen.batch_size == 4
    # Each example seen hundreds of times, in ≥ 60 optimizer steps, at a high LoRA rate.
    assert chosen.n_epochs * 36 >= auto.TARGET_VISITS
    assert chosen.n_epochs * 9 >= auto.MIN_STEPS
    assert chosen.learning_rate == pytest.approx(2e-3)
    assert set(chosen.reasons) == {"n_epochs", "batch_size", "learning_rate_multiplier"}
    assert chosen.reasons["n_epochs"].startswith(f"n_epochs={chosen.n_epochs}: ")


def test_a_large_dataset_is_not_over_trained() -> None:
    chosen = auto.choose(examples=50_000, tokens=50_000 * 400)
    assert chosen.batch_size == auto.MAX_BATCH
    assert chosen.n_epochs == 1  # 20M tokens a pass is over the budget already
    assert "tokens" in chosen.reasons["n_epochs"]
    assert chosen.learning_rate_multiplier == 2.0
    medium = auto.choose(examples=5_000, tokens=5_000 * 100)
    assert medium.n_epochs == 3  # inside the budget, the usual three passes


def test_explicit_values_win_and_are_not_explained() -> None:
    chosen = auto.choose(
        examples=36, tokens=2000, n_epochs=2, batch_size=8, learning_rate_multiplier=0.5
    )
    assert (chosen.n_epochs, chosen.batch_size, chosen.learning_rate_multiplier) == (2, 8, 0.5)
    assert chosen.reasons == {}
    only_epochs = auto.choose(examples=36, tokens=2000, n_epochs=5)
    assert only_epochs.n_epochs == 5 and "n_epochs" not in only_epochs.reasons


def test_dpo_gets_its_own_rate() -> None:
    chosen = auto.choose(examples=20, tokens=2000, method="dpo")
    assert chosen.learning_rate_multiplier == auto.DPO_LEARNING_RATE_MULTIPLIER
    assert "DPO" in chosen.reasons["learning_rate_multiplier"]
    assert chosen.n_epochs == 4  # 64 visits of 20 pairs, not the hundreds supervised needs


def pair(prompt: str = "Pick a colour.", good: str = "Blue.", bad: str = "Red.") -> str:
    return json.dumps(
        {
            "input": {"messages": [{"role": "user", "content": prompt}]},
            "preferred_output": [{"role": "assistant", "content": good}],
            "non_preferred_output": [{"role": "assistant", "content": bad}],
        }
    )


def test_preference_lines_in_openai_format_are_read() -> None:
    parsed = parse_preferences(f"{pair()}\n\n{pair('Another?', 'Green.', 'Grey.')}\n".encode())
    assert parsed.problems == []
    assert [
        (p.prompt[-1]["content"], p.preferred, p.non_preferred) for p in parsed.preferences
    ] == [
        ("Pick a colour.", "Blue.", "Red."),
        ("Another?", "Green.", "Grey."),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"messages": [{"role": "user", "content": "hi"}]}', "needs 'input'"),
        (pair(good="Same.", bad="Same."), "are the same"),
        (
            json.dumps(
                {
                    "input": {"messages": [{"role": "user", "content": "q"}]},
                    "preferred_output": [{"role": "user", "content": "a"}],
                    "non_preferred_output": [{"role": "assistant", "content": "b"}],
                }
            ),
            "'preferred_output' must be one assistant message",
        ),
        (
            json.dumps(
                {
                    "input": {"messages": [{"role": "assistant", "content": "q"}]},
                    "preferred_output": [{"role": "assistant", "content": "a"}],
                    "non_preferred_output": [{"role": "assistant", "content": "b"}],
                }
            ),
            "must end with a user",
        ),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_preference_lines_are_refused_with_their_numbers(line: str, reason: str) -> None:
    parsed = parse_preferences(f"{pair()}\n{line}\n".encode())
    assert [p.line for p in parsed.problems] == [2]
    assert reason in parsed.problems[0].reason
    with pytest.raises(InvalidTrainingDataError):
        parsed.raise_for_problems()


def test_the_result_file_has_steps_and_the_learning_check() -> None:
    steps = [{"step": s, "train_loss": 2.0 / s, "learning_rate": 1e-3} for s in (2, 1, 3)]
    check = {
        "before": {"loss": 1.5, "perplexity": 4.48, "exact_match": {"rate": 0.0}},
        "after": {"loss": 0.5, "perplexity": 1.65, "exact_match": {"rate": 0.75}},
    }
    rows = list(
        csv.DictReader(
            io.StringIO(results_csv(steps, {"ember": {"learning_check": check}}).decode())
        )
    )
    assert [r["step"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[0]["valid_loss"] == "1.5" and rows[0]["train_loss"] == ""
    assert rows[3]["valid_loss"] == "0.5" and rows[3]["valid_exact_match"] == "0.75"
    assert rows[2]["valid_loss"] == ""
