"""The training core without HTTP: data checks, packing, resumable LoRA training, perplexity."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ember.adapt.data import (
    IGNORE_INDEX,
    pack,
    parse_jsonl,
    tokenize_conversation,
    tokenize_text,
)
from ember.adapt.perplexity import perplexity
from ember.adapt.training import (
    LoraSettings,
    LoraTrainer,
    Outcome,
    StepReport,
    TrainingConfig,
    add_lora,
    checkpoint_dirs,
    pick_device,
    seed_everything,
)
from ember.errors import InvalidTrainingDataError
from tests.adapt.tiny_llama import build_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="module")
def tokenizer(tiny: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


def chat_line(question: str, answer: str) -> str:
    return json.dumps(
        {
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        }
    )


GOOD = chat_line("What colour is the sky?", "Blue.")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"text": "hello"}', "unknown format"),
        ('{"messages": "hi"}', "'messages' must be a list"),
        ('{"messages": [{"role": "robot", "content": "x"}]}', "role must be one of"),
        ('{"messages": [{"role": "user", "content": 3}]}', "content must be a string"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "no assistant message"),
        (
            '{"messages": [{"role": "user", "content": "q"}, '
            '{"role": "assistant", "content": " "}]}',
            "empty content",
        ),
        (
            '{"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"},'
            ' {"role": "assistant", "content": "a"}]}',
            "system message may only come first",
        ),
        ('{"instruction": 5, "output": "x"}', "'instruction' must be a string"),
        ('{"conversations": [{"from": "alien", "value": "x"}]}', "from must be one of"),
    ],
)
def test_every_bad_line_is_reported_with_its_number(line: str, reason: str) -> None:
    data = "\n".join([GOOD, "", line, GOOD]).encode()
    parsed = parse_jsonl(data)
    assert [p.line for p in parsed.problems] == [3]
    assert reason in parsed.problems[0].reason
    assert len(parsed.conversations) == 2
    with pytest.raises(InvalidTrainingDataError, match="line 3: "):
        parsed.raise_for_problems()


def test_all_bad_lines_are_listed_and_an_empty_file_is_refused() -> None:
    not_utf8 = parse_jsonl(GOOD.encode() + b"\n" + GOOD.encode() + b"\nbad \xff\n")
    assert [(p.line, p.reason) for p in not_utf8.problems] == [(3, "not valid UTF-8")]
    parsed = parse_jsonl(b"{}\n" + GOOD.encode() + b"\n{x\n")
    assert [p.line for p in parsed.problems] == [1, 3]
    with pytest.raises(InvalidTrainingDataError, match="no examples"):
        parse_jsonl(b"\n\n").raise_for_problems()


def test_alpaca_and_sharegpt_become_chat() -> None:
    alpaca = {"instruction": "Translate", "input": "chat", "output": "cat", "system": "Be terse"}
    sharegpt = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    parsed = parse_jsonl(f"{json.dumps(alpaca)}\n{json.dumps(sharegpt)}\n".encode())
    assert parsed.formats == {"alpaca": 1, "sharegpt": 1}
    assert parsed.conversations == [
        [
            {"role": "system", "content": "Be terse"},
            {"role": "user", "content": "Translate\n\nchat"},
            {"role": "assistant", "content": "cat"},
        ],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    ]


def test_loss_falls_only_on_assistant_turns(tokenizer: Any) -> None:
    conversation = [
        {"role": "user", "content": "Name a fruit."},
        {"role": "assistant", "content": "A pear."},
        {"role": "user", "content": "Another?"},
        {"role": "assistant", "content": "A plum."},
    ]
    example = tokenize_conversation(tokenizer, conversation)
    assert len(example.input_ids) == len(example.labels)
    trained = tokenizer.decode([t for t in example.labels if t != IGNORE_INDEX])
    assert trained == "A pear.<|im_end|>\nA plum.<|im_end|>\n"
    everything = tokenizer.decode(example.input_ids)
    assert "Name a fruit." in everything and "Another?" in everything


def test_packing_wastes_no_padding(tokenizer: Any) -> None:
    examples = [tokenize_text(tokenizer, f"Sentence number {i} is here.") for i in range(50)]
    blocks = pack(examples, 32, tokenizer.eos_token_id)
    assert all(len(b.input_ids) == 32 for b in blocks[:-1])
    total = sum(len(e.input_ids) + 1 for e in examples)
    assert sum(len(b.input_ids) for b in blocks) == total


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.losses: list[float] = []
        self.checkpoints: list[int] = []
        self.stop_after = stop_after

    def on_step(self, report: StepReport) -> None:
        self.losses.append(report.loss)

    def on_checkpoint(self, step: int, path: Path, report: StepReport) -> None:
        self.checkpoints.append(step)

    def interruption(self) -> Outcome | None:
        if self.stop_after is not None and len(self.losses) >= self.stop_after:
            return "paused"
        return None


def trainer(tiny: Path, tokenizer: Any, workdir: Path, recorder: Recorder) -> LoraTrainer:
    import torch
    from transformers import AutoModelForCausalLM

    lines = [chat_line(f"What is {i} plus {i}?", f"It is {2 * i}.") for i in range(24)]
    conversations = parse_jsonl("\n".join(lines).encode()).conversations
    examples = [tokenize_conversation(tokenizer, c) for c in conversations]
    blocks = pack(examples, 64, tokenizer.eos_token_id)
    seed_everything(7)
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    model.to(pick_device("auto"))  # the CPU here; the GPU where torch sees one
    model = add_lora(model, LoraSettings(rank=4, alpha=8, dropout=0.1))
    config = TrainingConfig(
        n_epochs=20, batch_size=2, learning_rate=5e-3, checkpoint_every=4, max_steps=20
    )
    return LoraTrainer(
        model, blocks, config, workdir, pad_id=tokenizer.pad_token_id, observer=recorder
    )


def test_resume_replays_the_same_loss_curve(tiny: Path, tokenizer: Any, tmp_path: Path) -> None:
    straight = Recorder()
    assert trainer(tiny, tokenizer, tmp_path / "a", straight).train() == "succeeded"
    assert len(straight.losses) == 20
    assert straight.checkpoints == [4, 8, 12, 16, 20]
    assert [p.name for p in checkpoint_dirs(tmp_path / "a")] == [
        "step-000012",
        "step-000016",
        "step-000020",
    ]

    first = Recorder(stop_after=6)  # interrupted between scheduled checkpoints
    assert trainer(tiny, tokenizer, tmp_path / "b", first).train() == "paused"
    assert first.checkpoints == [4, 6]
    second = Recorder()
    resumed = trainer(tiny, tokenizer, tmp_path / "b", second)
    assert resumed.resume_from_latest() == 6
    assert resumed.train() == "succeeded"
    assert first.losses + second.losses == straight.losses  # bit for bit, dropout included


def test_training_lowers_perplexity(tiny: Path, tokenizer: Any, tmp_path: Path) -> None:
    recorder = Recorder()
    run = trainer(tiny, tokenizer, tmp_path, recorder)
    blocks = run.blocks
    before = perplexity(run.model, blocks, pad_id=tokenizer.pad_token_id)
    run.train()
    after = perplexity(run.model, blocks, pad_id=tokenizer.pad_token_id)
    assert math.isfinite(before) and after < before
