"""DATE_OF_BIRTH: a real date next to a birth word (出生, 生日, DOB, born, birth).

A date alone is not personal; only the context makes it a birth date.
"""

from __future__ import annotations

import datetime
import re

from ember.guard.recognizer import Pattern, Recognizer
from ember.guard.registry import register

MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)


@register
class DateOfBirthRecognizer(Recognizer):
    name = "date_of_birth"
    entity_type = "DATE_OF_BIRTH"
    patterns = (
        Pattern(
            "ymd",
            r"(?<!\d)(?:19|20)\d{2}(?:[-/.]\d{1,2}[-/.]\d{1,2}|年\d{1,2}月\d{1,2}日?)(?!\d)",
            0.3,
        ),
        Pattern("mdy", r"(?<!\d)\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)\d{2}(?!\d)", 0.3),
        Pattern("month_d_y", rf"\b{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? (?:19|20)\d{{2}}\b", 0.3),
        Pattern("d_month_y", rf"\b\d{{1,2}}(?:st|nd|rd|th)? {_MONTH},? (?:19|20)\d{{2}}\b", 0.3),
    )
    context = ("出生", "生日", "生于", "诞辰", "dob", "d.o.b", "born", "birth")
    requires_context = True
    context_boost = 0.5

    def validate(self, value: str) -> bool | None:
        numbers = [int(n) for n in re.findall(r"\d+", value)]
        words = re.findall(r"[A-Za-z]+", value)
        month_word = next((MONTHS[w.lower()] for w in words if w.lower() in MONTHS), None)
        if month_word is not None:
            day, year = (numbers[0], numbers[1])
            candidates = [(year, month_word, day)]
        elif numbers[0] > 31:
            candidates = [(numbers[0], numbers[1], numbers[2])]
        else:  # 05/06/1990: month-first or day-first, either will do
            candidates = [
                (numbers[2], numbers[0], numbers[1]),
                (numbers[2], numbers[1], numbers[0]),
            ]
        for year, month, day in candidates:
            try:
                if datetime.date(year, month, day) <= datetime.date.today():
                    return None
            except ValueError:
                continue
        return False
