"""Given names and surnames from the US Census 1990 name lists (PyPI ``names``, public data).

5,163 given names and 88,799 surnames, read once on first use (about 30 ms). The recognizer
for English names uses them where spaCy's ``en_core_web_sm`` is weakest: names it has not seen,
standing alone or in lists. Given names that are also everyday words ("May", "Will", "Grace",
"Bill") are left out, so only the name reading counts.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

from ember.guard.recognizer import word_set

# Census given names that English text mostly uses as ordinary words.
EVERYDAY_WORDS = word_set(
    """
    april may june august will rose grace hope joy faith bill mark art guy page sky summer
    autumn dawn eve star crystal ruby pearl iris lily holly ivy jade amber hunter chase miles
    major king prince royal sunny honey brook bay forest river gay penny sandy rocky lane
    drew earl noble dean cash price ray frank grant gene pat sue carol ken don lou jack
    christian sterling golden marshall bishop judge young long short little love sharon lady
    baby precious angel an in on is so or le la al el de del van von an see sol kay ann
    blue green brown white black gray grey north west south east ocean rain storm winter
    early late best hall wood field stone town city street park rich rod lee tom nick buck
    bud chip dale glen wade don rusty mason carter cooper taylor tyler parker porter hunter
    walker fisher baker miller archer spencer sherman fletcher tanner major colonel general
    mercedes lexus harley troy paris sydney austin dallas houston china india georgia
    virginia carolina florida jordan israel kenya asia africa america europe avis hertz
    princess carry victoria monday tuesday wednesday thursday friday saturday sunday
    german
    """
)


@lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    """Lowercase given names, everyday words removed."""
    found: set[str] = set()
    for part in ("dist.male.first", "dist.female.first"):
        found |= _first_column(part)
    return frozenset(found - EVERYDAY_WORDS)


@lru_cache(maxsize=1)
def surnames() -> frozenset[str]:
    """Lowercase surnames (many are everyday words too: use them only beside a given name)."""
    return frozenset(_first_column("dist.all.last"))


@lru_cache(maxsize=1)
def surname_dominant() -> frozenset[str]:
    """Lowercase names more people carry as a surname than as a given name ("williams",
    "davis", "coleman"; not "mary", "tom"): the census share of each list, the given-name
    share averaged over men and women."""
    given: dict[str, float] = {}
    for part in ("dist.male.first", "dist.female.first"):
        for name, share in _shares(part).items():
            given[name] = given.get(name, 0.0) + share / 2
    return frozenset(
        name
        for name, share in _shares("dist.all.last").items()
        if name not in given or share > given[name]
    )


def _first_column(name: str) -> set[str]:
    return set(_shares(name))


def _shares(name: str) -> dict[str, float]:
    """Name -> percent of the population in one census list."""
    text = files("names").joinpath(name).read_text(encoding="ascii")
    rows = (line.split() for line in text.splitlines() if line.strip())
    return {row[0].lower(): float(row[1]) for row in rows}
