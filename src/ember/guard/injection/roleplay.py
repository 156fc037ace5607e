"""Role-play jailbreaks: DAN, developer mode, "no restrictions" personas, grandmother tricks.

An ordinary role-play request ("pretend you are a tour guide", 扮演一名导游) matches
nothing here; the patterns need the persona to shed its rules, or a known jailbreak name,
or the grandmother set-up that asks for keys or recipes (奶奶漏洞).
"""

from __future__ import annotations

import re

from ember.guard.injection.detector import Pattern, PatternDetector, register_detector

_LIMITS_EN = (
    r"(?:restrictions?|limits?|limitations?|filters?|guidelines?|rules|ethics|morals?|"
    r"censorship|boundaries|content\s+polic(?:y|ies))"
)
_LIMITS_ZH = r"(?:限制|约束|规则|审查|道德|底线|伦理|过滤)"
_SECRETS = r"(?:serial|activation|product|license|licence|cd)\s*(?:keys?|codes?|numbers?)"
_GRANNY_EN = r"(?:grandma|grandmother|granny|nana|grandpa|grandfather)"
_GRANNY_ZH = r"(?:奶奶|祖母|外婆|姥姥|爷爷|外公)"


class RoleplayDetector(PatternDetector):
    """Scores personas built to escape a model's rules."""

    name = "roleplay"
    PATTERNS = (
        Pattern("DAN", r"\bDAN\b", 0.6, 0),
        Pattern("do anything now", r"\bdo\s+anything\s+now\b", 0.9),
        Pattern("developer mode", r"\bdeveloper\s+mode\b", 0.6),
        Pattern(
            "developer mode enabled",
            r"\bdeveloper\s+mode\s+(?:enabled|activated|on|output)\b|\benable\s+developer\s+mode",
            0.85,
        ),
        Pattern("jailbreak", r"\bjail\s?break(?:s|ed|ing)?\b", 0.4),
        Pattern(
            "pretend no restrictions",
            r"\b(?:pretend|act\s+as\s+if|imagine|behave\s+as\s+if|suppose)\b[^.!?\n]{0,40}?\byou\s+"
            rf"(?:have|had|are\s+free\s+of|are\s+without)\s+(?:no|any)?\s*(?:\w+\s+){{0,2}}{_LIMITS_EN}",
            0.9,
        ),
        Pattern(
            "without restrictions",
            rf"\b(?:without|free\s+(?:of|from))\s+(?:any\s+)?{_LIMITS_EN}",
            0.45,
        ),
        Pattern(
            "unrestricted persona",
            r"\b(?:unfiltered|uncensored|amoral|unrestricted|unethical|evil|unbound)\s+"
            r"(?:ai|assistant|model|chatbot|mode|version|bot|persona|character|confidant)\b",
            0.75,
        ),
        Pattern("no longer bound", r"\b(?:no\s+longer|not)\s+bound\s+by\b|\bbroken\s+free\b", 0.75),
        Pattern(
            "stay in character", r"\bstay\s+in\s+character\b|\bbreak(?:ing)?\s+character\b", 0.4
        ),
        Pattern(
            "known jailbreak persona",
            r"\b(?:AIM|STAN|DUDE|Mongo\s+Tom|BetterDAN|AntiGPT|BasedGPT|DevMode)\b",
            0.6,
            0,
        ),
        Pattern(
            "policy bypass", r"\b(?:openai|anthropic)'?s?\s+(?:content\s+)?polic(?:y|ies)\b", 0.4
        ),
        Pattern(
            "dual response", r"\[🔓|\(🔓|🔓\s*JAILBREAK|\bnormal\s+response\b.*\bjailbreak", 0.6
        ),
        Pattern(
            "grandmother trick",
            rf"\b{_GRANNY_EN}\b[^\n]{{0,120}}?(?:{_SECRETS}|napalm|recipe\s+for|how\s+to\s+make)",
            0.75,
        ),
        Pattern(
            "deceased relative",
            rf"\b(?:late|deceased|dead|dear\s+departed)\s+{_GRANNY_EN}\b[^\n]{{0,80}}?\bused\s+to\b",
            0.5,
        ),
        Pattern("开发者模式", r"开发者模式|开发人员模式", 0.8, re.IGNORECASE),
        Pattern("越狱", r"越狱", 0.5),
        Pattern(
            "假装没有限制",
            rf"(?:假装|假设|想象|当作|扮演)[^。！？\n]{{0,20}}?(?:没有|不受|不存在|摆脱|无视)"
            rf"(?:任何)?[^。！？\n]{{0,4}}?{_LIMITS_ZH}",
            0.9,
        ),
        Pattern(
            "无限制AI",
            r"(?:无限制|没有(?:任何)?限制|不受限制?|无审查|无道德|邪恶)的?\s*(?:AI|人工智能|助手|模式|模型|版本)",
            0.75,
        ),
        Pattern(
            "奶奶漏洞",
            rf"{_GRANNY_ZH}[^。\n]{{0,60}}?(?:序列号|激活码|密钥|注册码|秘钥|配方|制作方法|制造方法)",
            0.8,
        ),
        Pattern(
            "扮演已故亲人",
            rf"(?:扮演|假装|当)[^。！？\n]{{0,10}}?(?:已故|去世|过世)的?{_GRANNY_ZH}",
            0.6,
        ),
    )


register_detector("roleplay", RoleplayDetector)
