"""PERSON (Chinese): jieba's person-name tag (``nr``) checked against a surname list.

A word tagged ``nr`` of two to four characters that starts with a common surname scores 0.6;
a context word (先生, 女士, 经理, 姓名 ...) within reach raises it. A name after 姓名/联系人
is found by pattern even when jieba does not tag it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

from ember.guard.recognizer import Recognizer
from ember.guard.registry import register

COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐")
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
    "左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕"
    "屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝傅鞠阎郜晋蔺芮习"
)
_NAME_AFTER_LABEL = re.compile(
    r"(?:姓名|联系人|收件人|寄件人|患者|申请人|户名|持卡人|客户|车主|业主|房东|租客|乘客|顾客|"
    r"会员|员工|司机|学生|家长|经办人|负责人|法人代表|法定代表人|签收人|担保人|投保人|被保险人)"
    r"[:：\s]*(?P<v>[\u4e00-\u9fa5]{2,3})(?=[^\u4e00-\u9fa5]|$|[的先女已于在是说和与向将把])"
)

_HAN_RUN = re.compile(r"[\u4e00-\u9fa5]{2,}")
_SURNAME_CHAR = re.compile(
    "[" + "".join(sorted(SURNAMES | {c[0] for c in COMPOUND_SURNAMES})) + "]"
)


def has_surname(word: str) -> bool:
    return word[0] in SURNAMES or word.startswith(COMPOUND_SURNAMES)


@register
class ChinesePersonRecognizer(Recognizer):
    name = "person_zh"
    entity_type = "PERSON"
    languages = frozenset({"zh"})
    uses_nlp = True
    context = (
        "先生",
        "女士",
        "小姐",
        "经理",
        "老师",
        "医生",
        "教授",
        "同学",
        "姓名",
        "联系人",
        "总监",
        "主任",
        "律师",
        "师傅",
    )
    context_window = 8

    def __init__(self) -> None:
        self._posseg: Any = None
        self._loading = threading.Lock()

    def _tagger(self) -> Any:
        with self._loading:  # one load, however many threads ask at once
            return self._load()

    def _load(self) -> Any:
        if self._posseg is None:
            import jieba
            import jieba.posseg

            jieba.setLogLevel(logging.WARNING)
            self._posseg = jieba.posseg.POSTokenizer(jieba.Tokenizer())
        return self._posseg

    def validate(self, value: str) -> bool | None:
        return None if 2 <= len(value) <= 4 and has_surname(value) else False

    def find(self, text: str, language: str) -> Iterator[tuple[int, int, float]]:
        for match in _NAME_AFTER_LABEL.finditer(text):
            yield match.start("v"), match.end("v"), 0.85
        tagger = self._tagger()
        # jieba sees only runs of Han characters that hold a surname character: Latin text,
        # digits and punctuation cost it time and never hold a Chinese name.
        for run in _HAN_RUN.finditer(text):
            piece = run.group()
            if not _SURNAME_CHAR.search(piece):
                continue
            offset = run.start()
            for word, flag in tagger.cut(piece):
                if flag == "nr":
                    yield offset, offset + len(word), 0.6
                offset += len(word)
