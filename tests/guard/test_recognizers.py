"""Recognizer tables: each row a text and the spans that must (or must not) be found.

Positives assert the exact (type, text) found; near-misses assert a type is absent. One
Analyzer (and so one spaCy and one jieba load) serves the whole module.
"""

from __future__ import annotations

import time

import pytest

from ember.guard import Analyzer, Span, default_registry, detect_language, resolve_overlaps
from ember.guard.recognizers.card import luhn_ok
from ember.guard.recognizers.cn_id_card import id_check_char
from ember.guard.recognizers.cn_uscc import uscc_check_char
from ember.guard.recognizers.iban import iban_ok
from ember.guard.recognizers.person_en import name_stretches


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


FOUND = [
    # EMAIL
    ("Write to jane.doe+news@example.co.uk today.", "en", "EMAIL", "jane.doe+news@example.co.uk"),
    ("邮箱：zhang_san@163.com，欢迎联系。", "zh", "EMAIL", "zhang_san@163.com"),
    # PHONE
    ("我的手机号是13812345678。", "zh", "PHONE", "13812345678"),
    ("联系电话 +86 138-1234-5678", "zh", "PHONE", "+86 138-1234-5678"),
    ("请拨打 139 1234 5678 找我", "zh", "PHONE", "139 1234 5678"),
    ("办公室电话010-62345678", "zh", "PHONE", "010-62345678"),
    ("座机 0755-86001234", "zh", "PHONE", "0755-86001234"),
    ("Call our London office on +44 20 7946 0958.", "en", "PHONE", "+44 20 7946 0958"),
    ("Phone: (415) 555-2671", "en", "PHONE", "(415) 555-2671"),
    ("Mobile: 07911 123 456", "en", "PHONE", "07911 123 456"),
    ("Appelez-moi au 06.12.34.56.78 demain", "en", "PHONE", "06.12.34.56.78"),
    ("fax 030 1234567", "en", "PHONE", "030 1234567"),
    ("Office (21) 345-678 ext 12", "en", "PHONE", "(21) 345-678 ext 12"),
    ("reach me on +39 06 1234 5678", "en", "PHONE", "+39 06 1234 5678"),
    ("Desk: 412-555-0199x301", "en", "PHONE", "412-555-0199x301"),
    # CN_ID_CARD
    ("身份证号11010519491231002X", "zh", "CN_ID_CARD", "11010519491231002X"),
    ("ID 440300199003071234 on file", "en", "CN_ID_CARD", "440300199003071234"),
    ("身份证：110105491231002", "zh", "CN_ID_CARD", "110105491231002"),
    # BANK_CARD / CREDIT_CARD
    ("银行卡号 6222 0212 3456 7894", "zh", "BANK_CARD", "6222 0212 3456 7894"),
    ("卡号6222600260001072444", "zh", "BANK_CARD", "6222600260001072444"),
    ("Visa 4111-1111-1111-1111 exp 12/29", "en", "CREDIT_CARD", "4111-1111-1111-1111"),
    ("MC 5500 0000 0000 0004", "en", "CREDIT_CARD", "5500 0000 0000 0004"),
    ("Amex 378282246310005", "en", "CREDIT_CARD", "378282246310005"),
    ("JCB 3530111333300000", "en", "CREDIT_CARD", "3530111333300000"),
    ("JCB 15-digit 213112345678904 on file", "en", "CREDIT_CARD", "213112345678904"),
    ("Maestro 6304000000000000 expired", "en", "CREDIT_CARD", "6304000000000000"),
    ("Maestro card 501800000009", "en", "CREDIT_CARD", "501800000009"),
    # CN_USCC
    ("统一社会信用代码：91350100M000100Y43", "zh", "CN_USCC", "91350100M000100Y43"),
    ("信用代码 91110000600037341L", "zh", "CN_USCC", "91110000600037341L"),
    # US_SSN
    ("SSN 536-90-4399 on the form", "en", "US_SSN", "536-90-4399"),
    ("my social security number is 536904399", "en", "US_SSN", "536904399"),
    # IBAN
    ("IBAN GB82 WEST 1234 5698 7654 32", "en", "IBAN", "GB82 WEST 1234 5698 7654 32"),
    ("账户 DE89370400440532013000", "zh", "IBAN", "DE89370400440532013000"),
    # IP_ADDRESS
    ("server at 192.168.1.20 is down.", "en", "IP_ADDRESS", "192.168.1.20"),
    ("服务器地址10.0.0.1，请检查", "zh", "IP_ADDRESS", "10.0.0.1"),
    (
        "host 2001:db8:85a3::8a2e:370:7334 answers",
        "en",
        "IP_ADDRESS",
        "2001:db8:85a3::8a2e:370:7334",
    ),
    # ADDRESS
    ("我住在北京市朝阳区建国路88号。", "zh", "ADDRESS", "北京市朝阳区建国路88号"),
    ("地址：广东省深圳市南山区科技园路1号3栋", "zh", "ADDRESS", "广东省深圳市南山区科技园路1号3栋"),
    (
        "Ship to 1600 Pennsylvania Avenue, Washington, DC 20500",
        "en",
        "ADDRESS",
        "1600 Pennsylvania Avenue, Washington, DC 20500",
    ),
    ("She lives at 42 Elm St, Springfield.", "en", "ADDRESS", "42 Elm St, Springfield"),
    # ADDRESS: street lines with the number first or last, units, city/country lines
    ("Deliver to 221 Baker Street, London", "en", "ADDRESS", "221 Baker Street, London"),
    ("Her flat is at Calle de Alcalá 48, Madrid", "en", "ADDRESS", "Calle de Alcalá 48, Madrid"),
    ("Office: Hauptstraße 5, 10115 Berlin", "en", "ADDRESS", "Hauptstraße 5, 10115 Berlin"),
    ("We met at Storgatan 12 last week", "en", "ADDRESS", "Storgatan 12"),
    (
        "Send it to 77 Rue de Rivoli Apt. 4\nParis\nFrance 75001",
        "en",
        "ADDRESS",
        "77 Rue de Rivoli Apt. 4\nParis\nFrance 75001",
    ),
    (
        "Mail: 905 Hämeenkatu 14 Suite 3, Tampere",
        "en",
        "ADDRESS",
        "905 Hämeenkatu 14 Suite 3, Tampere",
    ),
    ("PSC 1234, Box 5678\nAPO AE 09012", "en", "ADDRESS", "PSC 1234, Box 5678\nAPO AE 09012"),
    ("my address is 12 ulica Długa 3", "en", "ADDRESS", "12 ulica Długa 3"),
    ("Office: Pärnu maantee 22, Tallinn", "en", "ADDRESS", "Pärnu maantee 22, Tallinn"),
    # ADDRESS blocks: a dot after the number, quoted or bulleted lines, a blank line before
    # the postal code line
    (
        "Ola Berg\n\n14 Torggata 7.\n Suite 3\n Hamar\n Norway 2317\nTel 555",
        "en",
        "ADDRESS",
        "14 Torggata 7.\n Suite 3\n Hamar\n Norway 2317",
    ),
    (
        "> 88 Harbour Road\n> Apt. 12\n> Nelson\n> New Zealand 7010",
        "en",
        "ADDRESS",
        "88 Harbour Road\n> Apt. 12\n> Nelson\n> New Zealand 7010",
    ),
    (
        "??? 5 Kirkegade 40\n??? Suite 9\n??? Aarhus",
        "en",
        "ADDRESS",
        "5 Kirkegade 40\n??? Suite 9\n??? Aarhus",
    ),
    (
        "4 Mannerheimintie 12\n Apt. 3\n Helsinki\n\n Finland 00100",
        "en",
        "ADDRESS",
        "4 Mannerheimintie 12\n Apt. 3\n Helsinki\n\n Finland 00100",
    ),
    # ADDRESS: a city after a unit on the same line; particles in street and city names
    (
        "please check 4410 Kirchweg 9 Apt. 15 Unterägeri Switzerland",
        "en",
        "ADDRESS",
        "4410 Kirchweg 9 Apt. 15 Unterägeri Switzerland",
    ),
    (
        "12 Via delle Rose 4\n Apt. 2\n Castel del Piano\n Italy 58033",
        "en",
        "ADDRESS",
        "12 Via delle Rose 4\n Apt. 2\n Castel del Piano\n Italy 58033",
    ),
    (
        "7 Hlavní 12\n Suite 3\n Ústí nad Labem\n Czech Republic 40001",
        "en",
        "ADDRESS",
        "7 Hlavní 12\n Suite 3\n Ústí nad Labem\n Czech Republic 40001",
    ),
    # ADDRESS: named streets after "on", cross streets, initials in street names
    ("The parade went along Harbour View Road today.", "en", "ADDRESS", "Harbour View Road"),
    (
        "Wait at the corner of 12 Elm Street and Oak Avenue.",
        "en",
        "ADDRESS",
        "12 Elm Street and Oak Avenue",
    ),
    (
        "Stop at the corner of Bahnhofstraße 3 St. and Lindenweg St. please",
        "en",
        "ADDRESS",
        "Bahnhofstraße 3 St. and Lindenweg St",
    ),
    ("The museum is on J. Jordaensstraat 14", "en", "ADDRESS", "J. Jordaensstraat 14"),
    # CN_PASSPORT
    ("护照号码E12345678", "zh", "CN_PASSPORT", "E12345678"),
    ("passport no. G87654321", "en", "CN_PASSPORT", "G87654321"),
    # CN_LICENSE_PLATE
    ("车牌京A12345被拍到", "zh", "CN_LICENSE_PLATE", "京A12345"),
    ("新能源车粤BD12345停在楼下", "zh", "CN_LICENSE_PLATE", "粤BD12345"),
    ("沪A·F1234X不对，沪AD12345才对", "zh", "CN_LICENSE_PLATE", "沪AD12345"),
    # DATE_OF_BIRTH
    ("出生日期：1990年3月7日", "zh", "DATE_OF_BIRTH", "1990年3月7日"),
    ("生日 1985-12-01", "zh", "DATE_OF_BIRTH", "1985-12-01"),
    ("DOB: 07/04/1976", "en", "DATE_OF_BIRTH", "07/04/1976"),
    ("He was born on March 5, 1982 in Ohio.", "en", "DATE_OF_BIRTH", "March 5, 1982"),
    # SECRET
    (
        "OPENAI_API_KEY=sk-proj-AbCdEf1234567890GhIjKlMn",
        "en",
        "SECRET",
        "sk-proj-AbCdEf1234567890GhIjKlMn",
    ),
    ("aws key AKIAIOSFODNN7EXAMPLE", "en", "SECRET", "AKIAIOSFODNN7EXAMPLE"),
    (
        "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "en",
        "SECRET",
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    ),
    ("slack xoxb-123456789012-abcdefABCDEF", "en", "SECRET", "xoxb-123456789012-abcdefABCDEF"),
    (
        "auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r",
        "en",
        "SECRET",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r",
    ),
    ("password=Tr0ub4dor&3x", "en", "SECRET", "Tr0ub4dor&3x"),
    ("数据库密码：Xk9#mP2qL7", "zh", "SECRET", "Xk9#mP2qL7"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
        "en",
        "SECRET",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
    ),
    # PERSON
    ("Yesterday John Smith met the board.", "en", "PERSON", "John Smith"),
    ("Please forward this to Sarah Johnson.", "en", "PERSON", "Sarah Johnson"),
    ("联系人：王小明", "zh", "PERSON", "王小明"),
    ("张伟先生明天到北京开会。", "zh", "PERSON", "张伟"),
    ("请李娜老师来一下。", "zh", "PERSON", "李娜"),
    ("客户王岩已经签收。", "zh", "PERSON", "王岩"),
    ("车主梁勇的车停在门口", "zh", "PERSON", "梁勇"),
    ("户名：孙丽华", "zh", "PERSON", "孙丽华"),
    # PERSON by cue: titles, naming phrases, middle initials, dialogue speakers
    ("Please ask Dr. Okonkwo Adeyemi to call back.", "en", "PERSON", "Okonkwo Adeyemi"),
    ("Hello, my name is Ludmiła Kowalczyk and I need help", "en", "PERSON", "Ludmiła Kowalczyk"),
    ("everyone calls me tiago", "en", "PERSON", "tiago"),
    ("Signed by Ingrid K. Lindqvist yesterday", "en", "PERSON", "Ingrid K. Lindqvist"),
    ("Aiko: Where were you?\nBjorn: At home.", "en", "PERSON", "Aiko"),
    # PERSON by the census given-name list, where NER misses or mislabels the name
    ("Harriet is a very patient colleague.", "en", "PERSON", "Harriet"),
    ("The kids were Odalys, Harriet and Quentin.", "en", "PERSON", "Quentin"),
    ("please forward it to marlene oconnor today", "en", "PERSON", "marlene oconnor"),
    ("I want to add my son Oskari to the policy.", "en", "PERSON", "Oskari"),
    ("What is your last name? Varga", "en", "PERSON", "Varga"),
    ("please ask mr. okafor to sign", "en", "PERSON", "okafor"),
    # a list most of whose items are names: the other items are names too
    ("Invited: Zorana, Mary, Teresa and Jodi.", "en", "PERSON", "Zorana"),
    # later mentions of a name already found
    (
        "Yesterday Ilkka Rautavaara joined. Rautavaara starts on Monday.",
        "en",
        "PERSON",
        "Rautavaara",
    ),
    # a name ends at a sentence end; ". " joins only an initial
    (
        "The report is by Annika Lindqvist. Lindqvist argues that costs rose.",
        "en",
        "PERSON",
        "Annika Lindqvist",
    ),
    ("Ask Zoe M. Young about it.", "en", "PERSON", "Zoe M. Young"),
    # cues only people fit: verbs of speech and feeling, the one spoken to, relatives
    ('Teodora yelled at us: "Stop!"', "en", "PERSON", "Teodora"),
    ("Great idea! said Oyelaran to the team", "en", "PERSON", "Oyelaran"),
    ("That is enough, said Ines to Kwabena.", "en", "PERSON", "Kwabena"),
    ("Rautio, could you send the file?", "en", "PERSON", "Rautio"),
    ("See you tomorrow, Ebrima!", "en", "PERSON", "Ebrima"),
    ("We met at Uchenna's birthday last week.", "en", "PERSON", "Uchenna"),
    ("Signed: Jaroslav P Dvorak will attend", "en", "PERSON", "Jaroslav P Dvorak"),
    # lowercase: a given name and a surname that is no dictionary word; lists of given names
    ("please call olga krylova tomorrow", "en", "PERSON", "olga krylova"),
    ("follow up with benjamin a seiler soon", "en", "PERSON", "benjamin a seiler"),
    ("the guests: brenda, kevin, oskari and laura.", "en", "PERSON", "oskari"),
]

NEAR_MISSES = [
    # wrong check digit / invalid date
    ("身份证号110105194912310021", "zh", "CN_ID_CARD"),
    ("号码 11010519491331002X", "zh", "CN_ID_CARD"),
    ("身份证：110105491331002", "zh", "CN_ID_CARD"),
    ("17位数字 12345678901234567", "zh", "CN_ID_CARD"),
    ("统一社会信用代码：91350100M000100Y44", "zh", "CN_USCC"),
    # Luhn-invalid, no issuer prefix, repeated digits
    ("银行卡号 6222 0212 3456 7890", "zh", "BANK_CARD"),
    ("Visa 4111 1111 1111 1112", "en", "CREDIT_CARD"),
    ("order 1234567890123452 shipped", "en", "CREDIT_CARD"),
    ("tracking 0000000000000000", "en", "CREDIT_CARD"),
    ("ticket 630400000001 is 12 digits but not Luhn-valid", "en", "CREDIT_CARD"),
    ("ref 411111111117 passes Luhn but Visa has no 12-digit cards", "en", "CREDIT_CARD"),
    # order numbers and lengths that are not phones
    ("订单号13812345678请查收", "zh", "PHONE"),
    ("Order #4155552671 shipped", "en", "PHONE"),
    ("The meeting is on 2024-05-01 10:30", "en", "PHONE"),
    ("Upgrade to 10.4.22.7 now", "en", "PHONE"),
    ("Scores were 12 34 56 today", "en", "PHONE"),
    ("pages 1234 5678", "en", "PHONE"),
    ("SSN 536-90-4399", "en", "PHONE"),
    ("流水号 138123456789012", "zh", "PHONE"),
    ("区号不对 0755-1234567-8", "zh", "PHONE"),
    # SSN rules
    ("SSN 000-12-3456", "en", "US_SSN"),
    ("SSN 666-12-3456", "en", "US_SSN"),
    ("SSN 912-34-5678", "en", "US_SSN"),
    ("SSN 123-00-4567", "en", "US_SSN"),
    ("number 536904399 in stock", "en", "US_SSN"),
    ("IBAN GB82 WEST 1234 5698 7654 33", "en", "IBAN"),
    # versions and invalid addresses
    ("Upgrade to version 1.2.3.4 today", "en", "IP_ADDRESS"),
    ("Release v10.0.0.1 is out", "en", "IP_ADDRESS"),
    ("版本 2.0.1.3 已发布", "zh", "IP_ADDRESS"),
    ("bad 256.1.1.1 address", "en", "IP_ADDRESS"),
    ("meeting at 12:30:45 sharp", "en", "IP_ADDRESS"),
    ("MAC 00:1A:2B:3C:4D:5E", "en", "IP_ADDRESS"),
    # passports and dates need their context
    ("商品编号E12345678", "zh", "CN_PASSPORT"),
    ("会议定在2024-05-01举行", "zh", "DATE_OF_BIRTH"),
    ("The invoice is dated March 5, 1982.", "en", "DATE_OF_BIRTH"),
    ("born 1990-02-30", "en", "DATE_OF_BIRTH"),
    # plates with too many letters
    ("代码京ABCDE1", "zh", "CN_LICENSE_PLATE"),
    # secrets: placeholders and low entropy
    ("password=${DB_PASSWORD}", "en", "SECRET"),
    ("token: xxxxxxxxxxxx", "en", "SECRET"),
    ("sk-short", "en", "SECRET"),
    # sentences with numbers that are not streets
    ("Read chapter 3 of the book by page 12", "en", "ADDRESS"),
    ("I bought 3 apples and 12 pears", "en", "ADDRESS"),
    ("We scored 21 points in Game 4", "en", "ADDRESS"),
    ("Version 2 Build 7 ships Monday", "en", "ADDRESS"),
    ("See you next weekend. I'll turn 30", "en", "ADDRESS"),
    # after "on": only named streets with a spelled-out type; no numbers without a street type
    ("It depends on Level 3 support", "en", "ADDRESS"),
    ("Save it on Google Drive tonight", "en", "ADDRESS"),
    ("We agreed on Plan B yesterday", "en", "ADDRESS"),
    ("Let us focus on Main priorities", "en", "ADDRESS"),
    # names: words that are not names
    ("The weather in Paris is nice.", "en", "PERSON"),
    ("My name is not important here.", "en", "PERSON"),
    ("User: hi\nBot: hello", "en", "PERSON"),
    ("Plan B Options are on the table", "en", "PERSON"),
    ("May I pay my credit card bill in June?", "en", "PERSON"),
    ("Grace periods apply; Will you renew?", "en", "PERSON"),
    ("Our office moved to Jackson, Mississippi last year.", "en", "PERSON"),
    ("my card and my kid are fine", "en", "PERSON"),
    # NER guesses made only of dictionary words
    ("Read Cautionary Tales before the exam.", "en", "PERSON"),
    ("Awarded Salesperson of the Month three times.", "en", "PERSON"),
    # cues with ordinary words, lowercase words that are no names
    ("Critics shouted at the referee.", "en", "PERSON"),
    ("Thanks, Everyone! See you soon.", "en", "PERSON"),
    ("Coffee is from Ethiopia.", "en", "PERSON"),
    ("set max len to 5 and retry", "en", "PERSON"),
    ("I bought apples, pears and plums.", "en", "PERSON"),
    ("Choose Plan B Options before noon", "en", "PERSON"),
    # firms named after people, places after verbs of travel, web addresses
    ("The Hughes, Lambert and Foster Orchestra toured in 1990.", "en", "PERSON"),
    ("Russell Investments is a design agency.", "en", "PERSON"),
    ("I'm originally from Eckenroth, and I love it.", "en", "PERSON"),
    ("My website is https://GreenPrices.ch/", "en", "PERSON"),
    ("今天天气很好，我们去公园散步。", "zh", "PERSON"),
    ("email me at jane@localhost", "en", "EMAIL"),
]


@pytest.mark.parametrize(("text", "language", "entity", "value"), FOUND)
def test_found(analyzer: Analyzer, text: str, language: str, entity: str, value: str) -> None:
    spans = analyzer.analyze(text, language)
    assert (entity, value) in [(s.type, s.text) for s in spans], spans
    for span in spans:
        assert text[span.start : span.end] == span.text


@pytest.mark.parametrize(("text", "language", "entity"), NEAR_MISSES)
def test_near_miss(analyzer: Analyzer, text: str, language: str, entity: str) -> None:
    spans = analyzer.analyze(text, language)
    assert entity not in [s.type for s in spans], spans


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (lambda v: id_check_char(v[:17]) == v[17], "11010519491231002X", True),
        (lambda v: id_check_char(v[:17]) == v[17], "110105194912310021", False),
        (lambda v: uscc_check_char(v[:17]) == v[17], "91350100M000100Y43", True),
        (lambda v: uscc_check_char(v[:17]) == v[17], "91350100M000100Y44", False),
        (luhn_ok, "4111111111111111", True),
        (luhn_ok, "4111111111111112", False),
        (iban_ok, "GB82WEST12345698765432", True),
        (iban_ok, "GB82WEST12345698765433", False),
    ],
)
def test_checksums(check: object, value: str, ok: bool) -> None:
    assert callable(check)
    assert check(value) is ok


def test_checksum_pins_score(analyzer: Analyzer) -> None:
    (span,) = analyzer.analyze("11010519491231002X", "zh", entities=["CN_ID_CARD"])
    assert span.score == 1.0


def test_entities_filter_and_auto_language(analyzer: Analyzer) -> None:
    text = "张伟的手机13812345678，邮箱zw@example.com"
    assert [s.type for s in analyzer.analyze(text, entities=["EMAIL"])] == ["EMAIL"]
    assert detect_language(text) == "zh"
    assert detect_language("Call John at the office") == "en"


def test_overlaps_keep_higher_score_then_longer() -> None:
    low = Span("A", 0, 10, 0.5, "x" * 10)
    high = Span("B", 5, 8, 0.9, "x" * 3)
    longer = Span("C", 20, 30, 0.9, "x" * 10)
    shorter = Span("D", 22, 25, 0.9, "x" * 3)
    assert resolve_overlaps([low, high, shorter, longer]) == [high, longer]


def test_enabled_list_limits_recognizers() -> None:
    only = Analyzer(enabled=["email"])
    assert [s.type for s in only.analyze("a@b.com 13812345678")] == ["EMAIL"]
    assert set(default_registry.names()) >= {"email", "phone_cn", "person_zh", "secret"}


def test_throughput(analyzer: Analyzer) -> None:
    text = (
        "客户张伟，手机13812345678，身份证11010519491231002X，住在北京市朝阳区建国路88号。"
        "Contact John Smith at john@example.com or +44 20 7946 0958; card 4111 1111 1111 1111. "
    ) * 7
    text = text[:1000]
    analyzer.analyze(text)  # warm the models
    started = time.perf_counter()
    for _ in range(5):
        analyzer.analyze(text)
    seconds = (time.perf_counter() - started) / 5
    print(f"\nguard throughput: {len(text) / seconds:,.0f} chars/s on {len(text)} chars")
    assert seconds < 2.0


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("I live at 2450 Crown St, Springfield, IL 62704.", "2450 Crown St, Springfield, IL 62704"),
        ("Ship it to 1668 Glyn St please.", "1668 Glyn St"),
        # a name-shaped cross street belongs to the corner
        ("Meet at the corner of 9 Bay Road and Philip Bypass", "9 Bay Road and Philip Bypass"),
    ],
)
def test_street_names_are_not_people(text: str, address: str) -> None:
    """NER reads street names as people; a PERSON inside an ADDRESS match loses to it."""
    spans = Analyzer().analyze(text, "en")
    assert [(s.type, s.text) for s in spans] == [("ADDRESS", address)]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        # a blank line ends the block unless the next line is a postal code line on its own
        ("Send it to 12 Elm Street\n\nThanks, see you at 5", "12 Elm Street"),
        ("Send it to 12 Elm Street\n\nRoom 1010 is booked", "12 Elm Street"),
        ("Send it to 12 Elm Street\n\n\nFinland 00100", "12 Elm Street"),
        # after a unit, only place words up to the end of the line or sentence
        ("Send it to 12 Elm Street Apt. 4 Thanks", "12 Elm Street Apt. 4"),
        ("Send it to 12 Elm Street Apt. 4 Oslo is cold", "12 Elm Street Apt. 4"),
    ],
)
def test_address_block_ends(analyzer: Analyzer, text: str, address: str) -> None:
    spans = analyzer.analyze(text, "en", entities=["ADDRESS"])
    assert [s.text for s in spans] == [address]


@pytest.mark.parametrize(
    ("run", "stretches"),
    [
        # sentences that cannot hold a name are left out of NER; a stretch after one starts
        # with its last word
        ("Is it late? Ines Varga was here.", ["late? Ines Varga was here."]),
        ("Ines Varga was here. It is late.", ["Ines Varga was here."]),
        ("What a day. It is late. Yes.", []),
        ("Ines came. It is late. Ola left.", ["Ines came.", "late. Ola left."]),
        ("Call 555 1234\nIlse Berg\nPhone 555", ["1234\nIlse Berg\nPhone 555"]),
    ],
)
def test_name_stretches(run: str, stretches: list[str]) -> None:
    assert [run[s:e] for s, e in name_stretches(run)] == stretches
