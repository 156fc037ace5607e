"""A resumable peft LoRA training loop over packed blocks.

Why our own loop rather than ``transformers.Trainer``: a checkpoint here is everything the
next step depends on (adapter weights, AdamW moments, the LR schedule, every RNG, the step),
and the data order is a pure function of (seed, epoch), so ``kill -9`` at any moment and a
restart from the last checkpoint replays the very same loss curve. Checkpoints are written
to a temporary directory and renamed into place, so a kill mid-write leaves the previous one.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ember.adapt.data import epoch_order
from ember.adapt.objectives import Objective, Supervised

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
_STATE_FILE = "trainer_state.pt"
_ADAPTER_FILE = "adapter_model.safetensors"

Outcome = Literal["succeeded", "cancelled", "paused"]


@dataclass(frozen=True)
class LoraSettings:
    """The LoRA adapter's shape: rank, scaling, dropout and which linear layers get one."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES


@dataclass(frozen=True)
class TrainingConfig:
    n_epochs: int = 3
    batch_size: int = 4
    learning_rate: float = 2e-4
    seed: int = 42
    checkpoint_every: int = 10
    keep_checkpoints: int = 3
    max_steps: int | None = None
    lora: LoraSettings = field(default_factory=LoraSettings)

    def steps_per_epoch(self, n_blocks: int) -> int:
        return max(1, math.ceil(n_blocks / self.batch_size))

    def total_steps(self, n_blocks: int) -> int:
        total = self.n_epochs * self.steps_per_epoch(n_blocks)
        return min(total, self.max_steps) if self.max_steps else total


@dataclass(frozen=True)
class StepReport:
    step: int
    total_steps: int
    epoch: int
    loss: float
    learning_rate: float
    tokens: int  # trained-on tokens in this step
    seconds: float  # wall time of this step
    tokens_seen: int  # all input tokens so far (including resumed-from steps)
    metrics: dict[str, float] = field(default_factory=dict)  # the objective's own (DPO)


class TrainingObserver(Protocol):
    """What the loop tells the outside world, and asks it."""

    def on_step(self, report: StepReport) -> None: ...

    def on_checkpoint(self, step: int, path: Path, report: StepReport) -> None: ...

    def interruption(self) -> Outcome | None:
        """``"cancelled"`` or ``"paused"`` to stop after the current step, else None."""
        ...


def add_lora(model: Any, lora: LoraSettings) -> Any:
    """``model`` wrapped with fresh LoRA weights (deterministic under torch's seed)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft 0.21 asks transformers 5 a deprecated question (is_gradient_checkpointing).
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, config)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str = "auto") -> str:
    """``auto``: the first CUDA GPU when torch sees one, else the CPU; or exactly ``name``."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"fine_tuning_device is '{name}' but torch sees no CUDA GPU")
    return name


def checkpoint_dirs(workdir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = workdir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith("step-") and (p / _STATE_FILE).exists()]
    return sorted(found, key=lambda p: int(p.name.removeprefix("step-")))


class LoraTrainer:
    """Trains a peft model on items (blocks, or preference pairs for DPO) with an objective,
    checkpointing under ``workdir/checkpoints``."""

    def __init__(
        self,
        model: Any,
        blocks: Sequence[Any],
        config: TrainingConfig,
        workdir: Path,
        *,
        pad_id: int,
        observer: TrainingObserver,
        objective: Objective | None = None,
    ) -> None:
        import torch

        self.model = model
        self.objective: Objective = objective or Supervised()
        self.blocks = list(blocks)
        self.config = config
        self.workdir = workdir
        self.pad_id = pad_id
        self.observer = observer
        self.steps_per_epoch = config.steps_per_epoch(len(self.blocks))
        self.total_steps = config.total_steps(len(self.blocks))
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
        warmup = min(10, max(1, self.total_steps // 10))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            remaining = self.total_steps - warmup
            return max(0.0, (self.total_steps - step) / max(1, remaining))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.step = 0
        self.tokens_seen = 0

    # -- checkpoints ----------------------------------------------------------------------

    def resume_from_latest(self) -> int | None:
        """Load the newest complete checkpoint, if any; return its step."""
        found = checkpoint_dirs(self.workdir)
        if not found:
            return None
        self.load_checkpoint(found[-1])
        return self.step

    def load_checkpoint(self, path: Path) -> None:
        import numpy as np
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.model, load_file(str(path / _ADAPTER_FILE)))
        # On the CPU first, so a checkpoint written on a GPU resumes anywhere; the optimizer
        # moves its state to the parameters' device as it loads.
        state = torch.load(path / _STATE_FILE, weights_only=False, map_location="cpu")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.tokens_seen = int(state["tokens_seen"])
        random.setstate(state["python_rng"])
        np.random.set_state(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def save_checkpoint(self) -> Path:
        import numpy as np
        import torch
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        root = self.workdir / "checkpoints"
        final = root / f"step-{self.step:06d}"
        partial = root / f".partial-step-{self.step:06d}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        weights = {
            k: v.detach().cpu().contiguous()
            for k, v in get_peft_model_state_dict(self.model).items()
        }
        save_file(weights, str(partial / _ADAPTER_FILE))
        self.model.peft_config["default"].save_pretrained(str(partial))
        torch.save(
            {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "step": self.step,
                "tokens_seen": self.tokens_seen,
                "python_rng": random.getstate(),
                "numpy_rng": np.random.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            partial / _STATE_FILE,
        )
        _fsync_dir(partial)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        for old in checkpoint_dirs(self.workdir)[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    # -- the loop -------------------------------------------------------------------------

    def batch_for(self, step: int) -> list[Any]:
        """The blocks of global step ``step``: fixed by (seed, epoch, position)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        order = epoch_order(len(self.blocks), self.config.seed, epoch)
        size = self.config.batch_size
        return [self.blocks[i] for i in order[position * size : (position + 1) * size]]

    def train(self) -> Outcome:
        import torch

        self.model.train()
        while self.step < self.total_steps:
            started = time.perf_counter()
            step_loss = self.objective.step_loss(self.model, self.batch_for(self.step), self.pad_id)
            step_loss.loss.backward()
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], 1.0
            )
            learning_rate = float(self.scheduler.get_last_lr()[0])
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.tokens_seen += step_loss.input_tokens
            report = StepReport(
                step=self.step,
                total_steps=self.total_steps,
                epoch=(self.step - 1) // self.steps_per_epoch + 1,
                loss=float(step_loss.loss.detach()),
                learning_rate=learning_rate,
                tokens=step_loss.trained_tokens,
                seconds=time.perf_counter() - started,
                tokens_seen=self.tokens_seen,
                metrics=step_loss.metrics,
            )
            self.observer.on_step(report)
            interruption = self.observer.interruption()
            due = self.step % self.config.checkpoint_every == 0 or self.step == self.total_steps
            if due or interruption is not None:
                self.observer.on_checkpoint(self.step, self.save_checkpoint(), report)
            if interruption is not None and self.step < self.total_steps:
                return interruption
        return "succeeded"

    def save_adapter(self, path: Path) -> Path:
        self.model.save_pretrained(str(path))
        return path


def _fsync_dir(path: Path) -> None:
    for child in path.iterdir():
        with child.open("rb") as handle:
            os.fsync(handle.fileno())
