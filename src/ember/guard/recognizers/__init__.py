"""The built-in recognizers, one module each; importing this package registers them.

The import order below is the registry's order, which settles ties between equal spans (an
18-digit number that passes both the ID-card and the Luhn check is an ID card), so it is kept
by hand rather than sorted.
"""

# ruff: noqa: I001
from __future__ import annotations

from ember.guard.recognizers import cn_id_card
from ember.guard.recognizers import cn_uscc
from ember.guard.recognizers import card
from ember.guard.recognizers import phone
from ember.guard.recognizers import email
from ember.guard.recognizers import us_ssn
from ember.guard.recognizers import iban
from ember.guard.recognizers import ip_address
from ember.guard.recognizers import cn_passport
from ember.guard.recognizers import cn_license_plate
from ember.guard.recognizers import date_of_birth
from ember.guard.recognizers import secret
from ember.guard.recognizers import address
from ember.guard.recognizers import street_address
from ember.guard.recognizers import person_en
from ember.guard.recognizers import person_cue
from ember.guard.recognizers import person_zh

__all__ = [
    "address",
    "card",
    "cn_id_card",
    "cn_license_plate",
    "cn_passport",
    "cn_uscc",
    "date_of_birth",
    "email",
    "iban",
    "ip_address",
    "person_cue",
    "person_en",
    "person_zh",
    "phone",
    "secret",
    "street_address",
    "us_ssn",
]
