"""Wire models of ``POST /v1/fine_tuning/jobs`` (``CreateFineTuningJobRequest``) and of
Ember's data check, ``POST /v1/ember/fine_tuning/check`` (``CheckTrainingDataRequest``).

The LoRA settings and Ember's training knobs are a documented extension: a top-level
``ember`` object (clients send ``extra_body={"ember": {...}}``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from ember.adapt.training import DEFAULT_TARGET_MODULES
from ember.api.wire import WireModel
from ember.errors import UnsupportedParameterError
from ember.services.fine_tuning import JobRequest

Auto = Literal["auto"]


class Hyperparameters(WireModel):
    model_config = ConfigDict(extra="forbid")

    # Bounds apply to the number only: on the whole union pydantic would test "auto" too.
    n_epochs: Auto | Annotated[int, Field(ge=1, le=50)] = "auto"
    batch_size: Auto | Annotated[int, Field(ge=1, le=256)] = "auto"
    learning_rate_multiplier: Auto | Annotated[float, Field(gt=0, le=100)] = "auto"


class SupervisedMethod(WireModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class DpoHyperparameters(Hyperparameters):
    beta: Auto | Annotated[float, Field(gt=0, le=2)] = "auto"


class DpoMethod(WireModel):
    model_config = ConfigDict(extra="forbid")

    hyperparameters: DpoHyperparameters = Field(default_factory=DpoHyperparameters)


class Method(WireModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: SupervisedMethod | None = None
    dpo: DpoMethod | None = None


class LoraOptions(WireModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(default=8, ge=1, le=256)
    alpha: int = Field(default=16, ge=1, le=1024)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))


class EmberJobOptions(WireModel):
    """Ember's extension of a fine-tuning job."""

    model_config = ConfigDict(extra="forbid")

    lora: LoraOptions = Field(default_factory=LoraOptions)
    seq_len: int | None = Field(default=None, ge=16, le=32768)
    checkpoint_every: int | None = Field(default=None, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    validation_fraction: float = Field(default=0.1, ge=0.0, le=0.5)


class CreateFineTuningJobRequest(WireModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    training_file: str
    validation_file: str | None = None
    suffix: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\w.-]+$")
    seed: int | None = Field(default=None, ge=0, le=2147483647)
    hyperparameters: Hyperparameters | None = None
    method: Method | None = None
    integrations: list[Any] | None = None
    metadata: dict[str, str] | None = None
    ember: EmberJobOptions = Field(default_factory=EmberJobOptions)

    def to_domain(self) -> JobRequest:
        if self.integrations:
            raise UnsupportedParameterError(
                "Integrations (Weights and Biases) are not available in Ember; follow the "
                "job's events instead.",
                param="integrations",
            )
        hyper: Hyperparameters = self.hyperparameters or Hyperparameters()
        beta: float | None = None
        method = self.method.type if self.method is not None else "supervised"
        if self.method is not None:
            if method == "reinforcement":
                raise UnsupportedParameterError(
                    "Ember fine-tunes with the 'supervised' and 'dpo' methods, not "
                    "'reinforcement'.",
                    param="method.type",
                )
            if method == "supervised" and self.method.supervised is not None:
                hyper = self.method.supervised.hyperparameters
            if method == "dpo" and self.method.dpo is not None:
                dpo = self.method.dpo.hyperparameters
                hyper, beta = dpo, None if dpo.beta == "auto" else dpo.beta
        lora = self.ember.lora
        return JobRequest(
            model=self.model,
            training_file=self.training_file,
            method=method,
            beta=beta,
            validation_file=self.validation_file,
            suffix=self.suffix,
            seed=self.seed,
            n_epochs=None if hyper.n_epochs == "auto" else hyper.n_epochs,
            batch_size=None if hyper.batch_size == "auto" else hyper.batch_size,
            learning_rate_multiplier=None
            if hyper.learning_rate_multiplier == "auto"
            else hyper.learning_rate_multiplier,
            metadata=self.metadata,
            lora_rank=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=tuple(lora.target_modules),
            seq_len=self.ember.seq_len,
            checkpoint_every=self.ember.checkpoint_every,
            max_steps=self.ember.max_steps,
            validation_fraction=self.ember.validation_fraction,
        )


class CheckTrainingDataRequest(WireModel):
    """The files (and optionally the model) of a job to come: what its data check finds."""

    model_config = ConfigDict(extra="forbid")

    training_file: str
    validation_file: str | None = None
    method: Literal["supervised", "dpo"] = "supervised"
    model: str | None = None
