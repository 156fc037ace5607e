"""``"auto"`` hyperparameters: epochs, batch size and learning rate chosen from the data.

A LoRA adapter learns a small dataset only when it sees each example often enough, in
enough optimizer steps, at a learning rate high enough for a low-rank update; a large
dataset needs fewer passes and must not be over-trained (or take all night). So:

* ``batch_size``: about a tenth of the examples (enough steps per epoch on small data),
  1 to 16;
* ``n_epochs``: enough passes that the examples are seen ``TARGET_VISITS`` times in all
  (a small set) but at least ``MIN_STEPS`` optimizer steps, 3 to 30; fewer when
  that would train more than ``TOKEN_BUDGET`` tokens (a large set), never below 1;
* ``learning_rate_multiplier`` (of 2e-4): 10 for up to 200 examples, 5 up to 2,000, 2 above;
  for DPO 2.5 (its loss is steeper: the policy moves against a fixed reference), pairs seen
  about ``DPO_TARGET_VISITS`` times (1 to 5 passes), and ``beta`` 0.1 as in the DPO paper.

Every choice comes with the sentence that explains it, for the job's events. Explicit
values are kept as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BASE_LEARNING_RATE = 2e-4
TARGET_VISITS = 500  # examples seen in all, on a small dataset
MIN_STEPS = 60
MAX_EPOCHS = 30
MIN_EPOCHS = 3
MAX_BATCH = 16
TOKEN_BUDGET = 2_000_000  # input tokens trained on, at most, when epochs are chosen
DPO_BETA = 0.1
DPO_TARGET_VISITS = 64  # a preference is learned in few passes; more over-optimises it
DPO_MAX_EPOCHS = 5
DPO_LEARNING_RATE_MULTIPLIER = 2.5


@dataclass(frozen=True)
class Chosen:
    """Resolved hyperparameters and, for those chosen here, why."""

    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    reasons: dict[str, str]

    @property
    def learning_rate(self) -> float:
        return BASE_LEARNING_RATE * self.learning_rate_multiplier

    def as_dict(self) -> dict[str, int | float]:
        return {
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }


def choose(
    *,
    examples: int,
    tokens: int,
    method: str = "supervised",
    n_epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate_multiplier: float | None = None,
) -> Chosen:
    """The hyperparameters for ``examples`` training examples of ``tokens`` tokens in all;
    an argument that is not None is an explicit value and wins."""
    examples = max(1, examples)
    reasons: dict[str, str] = {}
    if batch_size is None:
        batch_size = min(MAX_BATCH, max(1, round(examples / 10)))
        reasons["batch_size"] = (
            f"batch_size={batch_size}: about a tenth of {examples} examples (1 to {MAX_BATCH})"
        )
    steps_per_epoch = math.ceil(examples / batch_size)
    if n_epochs is None and method == "dpo":
        n_epochs = min(DPO_MAX_EPOCHS, max(1, math.ceil(DPO_TARGET_VISITS / examples)))
        reasons["n_epochs"] = (
            f"n_epochs={n_epochs}: each of {examples} pairs seen about "
            f"{DPO_TARGET_VISITS // examples or 1}+ times (1 to {DPO_MAX_EPOCHS} passes for DPO)"
        )
    if n_epochs is None:
        by_visits = math.ceil(TARGET_VISITS / examples)
        by_steps = math.ceil(MIN_STEPS / steps_per_epoch)
        wanted = min(MAX_EPOCHS, max(MIN_EPOCHS, by_visits, by_steps))
        affordable = max(1, TOKEN_BUDGET // max(1, tokens))
        n_epochs = min(wanted, affordable)
        if n_epochs < wanted:
            why = f"{tokens} tokens a pass; more would train over {TOKEN_BUDGET:,} tokens"
        elif wanted == max(by_visits, by_steps):
            why = (
                f"each of {examples} examples seen about {TARGET_VISITS // examples or 1}+ "
                f"times and at least {MIN_STEPS} steps ({steps_per_epoch} a pass)"
            )
        else:
            why = f"kept within {MIN_EPOCHS} to {MAX_EPOCHS} passes"
        reasons["n_epochs"] = f"n_epochs={n_epochs}: {why}"
    if learning_rate_multiplier is None and method == "dpo":
        learning_rate_multiplier = DPO_LEARNING_RATE_MULTIPLIER
        reasons["learning_rate_multiplier"] = (
            f"learning_rate_multiplier={learning_rate_multiplier:g}: DPO's usual LoRA rate "
            f"({BASE_LEARNING_RATE * learning_rate_multiplier:.0e})"
        )
    if learning_rate_multiplier is None:
        learning_rate_multiplier = 10.0 if examples <= 200 else 5.0 if examples <= 2000 else 2.0
        reasons["learning_rate_multiplier"] = (
            f"learning_rate_multiplier={learning_rate_multiplier:g} "
            f"(learning rate {BASE_LEARNING_RATE * learning_rate_multiplier:.0e}): "
            f"a LoRA adapter on {examples} examples needs "
            f"{'a high' if examples <= 2000 else 'a moderate'} rate to move"
        )
    return Chosen(n_epochs, batch_size, float(learning_rate_multiplier), reasons)
