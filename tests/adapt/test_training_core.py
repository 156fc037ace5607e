"""The training core without HTTP: data checks, packing, resumable LoRA training, perplexity,
the answer-only loss and DPO."""

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
    rows,
    tokenize_conversation,
    tokenize_text,
)
from ember.adapt.objectives import Dpo, Supervised, preference_margin
from ember.adapt.perplexity import perplexity
from ember.adapt.preference import parse_preferences, tokenize_preference
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


def test_the_step_loss_covers_the_answer_tokens_and_nothing_else(
    tiny: Path, tokenizer: Any
) -> None:
    """Fails if a prompt token is trained: the trained count and the loss are checked
    against the answer's own tokens, found from the tokenizer, not from the labels."""
    import torch
    from transformers import AutoModelForCausalLM

    answer = "The code word for item 3 is ember-21."
    conversation = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is the code word for item 3?"},
        {"role": "assistant", "content": answer},
    ]
    blocks = rows([tokenize_conversation(tokenizer, conversation)], 512, tokenizer.eos_token_id)
    assert len(blocks) == 1
    ids = blocks[0].input_ids
    # The answer, its end of turn and the template's newline, then the EOS between examples.
    tail = tokenizer(answer + "<|im_end|>\n", add_special_tokens=False)["input_ids"]
    tail.append(tokenizer.eos_token_id)
    start = len(ids) - len(tail)
    assert ids[start:] == tail
    taught = list(range(start, len(ids)))

    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    with torch.no_grad():
        step = Supervised().step_loss(model, blocks, tokenizer.pad_token_id)
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    assert step.trained_tokens == len(taught)
    expected = torch.nn.functional.cross_entropy(
        logits[[p - 1 for p in taught]], torch.tensor([ids[p] for p in taught])
    )
    assert float(step.loss) == pytest.approx(float(expected), rel=1e-4)
    everything = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:]))
    assert float(step.loss) != pytest.approx(float(everything), rel=1e-3)


def test_rows_keep_examples_apart(tokenizer: Any) -> None:
    examples = [tokenize_conversation(tokenizer, c) for c in parse_jsonl(
        "\n".join(chat_line(f"Item {i}?", f"Code {7 * i}.") for i in range(5)).encode()
    ).conversations]  # fmt: skip
    blocks = rows(examples, 512, tokenizer.eos_token_id)
    assert len(blocks) == 5
    for block, example in zip(blocks, examples, strict=True):
        assert block.input_ids[: len(example.input_ids)] == example.input_ids
        assert len(block.input_ids) <= len(example.input_ids) + 1  # + EOS at most


def test_dpo_raises_the_preferred_answers_margin(
    tiny: Path, tokenizer: Any, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    lines = [
        {
            "input": {"messages": [{"role": "user", "content": f"Pick a colour for box {i}."}]},
            "preferred_output": [{"role": "assistant", "content": "Blue, of course."}],
            "non_preferred_output": [{"role": "assistant", "content": "Red, I think."}],
        }
        for i in range(12)
    ]
    parsed = parse_preferences("\n".join(json.dumps(x) for x in lines).encode())
    pairs = [
        tokenize_preference(tokenizer, p, 64, tokenizer.eos_token_id) for p in parsed.preferences
    ]
    train, held = pairs[:9], pairs[9:]
    seed_everything(3)
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    model = add_lora(model, LoraSettings(rank=4, alpha=8, dropout=0.0))
    pad = tokenizer.pad_token_id
    before = preference_margin(model, held, pad)
    recorder = Recorder()
    config = TrainingConfig(n_epochs=4, batch_size=3, learning_rate=5e-3, checkpoint_every=100)
    run = LoraTrainer(
        model, train, config, tmp_path, pad_id=pad, observer=recorder, objective=Dpo(beta=0.1)
    )
    assert run.train() == "succeeded"
    after = preference_margin(run.model, held, pad)
    assert after["margin"] > before["margin"] + 1.0
    assert after["accuracy"] == 1.0
    assert recorder.losses[-1] < recorder.losses[0] < 0.7  # log 2 at the start: no preference
