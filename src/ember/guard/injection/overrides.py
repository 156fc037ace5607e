"""Instruction-override phrasing in English and Chinese.

"Ignore the previous instructions", "you are now ...", "print your system prompt", fake
role markers, and their Chinese forms (忽略之前的指令, 你现在是, 输出你的系统提示).
The object of the verb matters: "ignore the typo" and 忽略这个错误 do not match, because
the patterns require instructions, rules or prompts (指令/规则/提示) as the object.
"""

from __future__ import annotations

from ember.guard.injection.detector import Pattern, PatternDetector, register_detector

_VERB_EN = r"(?:ignore|disregard|forget|skip|override|bypass|drop|abandon|neglect)"
_WHICH_EN = (
    r"(?:previous|prior|above|earlier|preceding|initial|original|system|your|all|any|old|"
    r"existing|developer|safety)"
)
_WHAT_EN = (
    r"(?:instructions?|prompts?|rules?|directions?|directives?|guidelines?|constraints?|"
    r"programming|commands?|policies|policy|restrictions?|context)"
)
_VERB_ZH = r"(?:忽略|无视|忘记|忘掉|不要理会|不用理会|别管|跳过|抛开|放弃|丢弃|清除|覆盖)"
_WHICH_ZH = r"(?:之前|以上|上面|前面|先前|此前|原来|原有|原先|所有|全部|你的|一切|刚才|上述|系统)"
_WHAT_ZH = r"(?:指令|指示|提示|规则|要求|设定|命令|限制|约束|对话|规定|准则|人设)"
_REVEAL_EN = r"(?:reveal|show|print|output|repeat|tell|display|leak|dump|give|write|spell)"
_REVEAL_ZH = r"(?:输出|显示|打印|告诉我|泄露|泄漏|重复|给我看|展示|透露|说出|复述)"


class OverrideDetector(PatternDetector):
    """Scores attempts to replace or expose the instructions a model was given."""

    name = "overrides"
    PATTERNS = (
        Pattern(
            "ignore previous instructions",
            rf"\b{_VERB_EN}\b(?:\W+\w+){{0,4}}?\W+{_WHICH_EN}\b(?:\W+\w+){{0,3}}?\W+{_WHAT_EN}\b",
            0.9,
        ),
        Pattern("you are now", r"\byou\s+are\s+now\b|\bfrom\s+now\s+on,?\s+you\b", 0.45),
        Pattern("new instructions", r"\b(?:new|updated|real)\s+(?:instructions?|rules)\s*:", 0.5),
        Pattern(
            "system prompt reveal",
            rf"\b{_REVEAL_EN}\b(?:\s+(?:me|us))?\s+(?:your|the|its|all|full|entire|exact)?"
            r"\s*(?:\w+\s+)?(?:system|initial|hidden|original|secret|"
            r"developer)\s+(?:prompt|instructions?|message)",
            0.85,
        ),
        Pattern(
            "system prompt question",
            r"\bwhat\s+(?:is|are|was|were)\s+your\s+(?:system\s+prompt|(?:initial|original|"
            r"hidden)\s+instructions)",
            0.7,
        ),
        Pattern(
            "do not follow rules",
            r"\b(?:do\s+not|don't|stop|no\s+longer)\s+(?:follow|obey|adhere\s+to)\s+(?:your|the|"
            r"any)\s+(?:rules|instructions|guidelines|policies)",
            0.7,
        ),
        Pattern(
            "fake role marker",
            r"<\|im_start\|>|<\|system\|>|\[/?INST\]|\[system\]|^#{2,}\s*(?:system|instruction)|"
            r"<<SYS>>",
            0.7,
        ),
        Pattern(
            "addressed to the model",
            r"\bif\s+you\s+are\s+an?\s+(?:ai|llm|language\s+model|assistant)\b|"
            r"\b(?:note|message)\s+(?:to|for)\s+(?:the\s+)?(?:ai|llm|assistant)\b",
            0.55,
        ),
        Pattern(
            "忽略之前的指令",
            rf"{_VERB_ZH}(?:掉)?[^。！？\n]{{0,4}}?{_WHICH_ZH}[^。！？\n]{{0,8}}?{_WHAT_ZH}",
            0.9,
        ),
        Pattern(
            "忽略以上所有",
            rf"{_VERB_ZH}(?:掉)?(?:以上|上面|前面|之前|上述)的?(?:所有|全部|一切)",
            0.85,
        ),
        Pattern("你现在是", r"你现在(?:是|的身份是|扮演)|从现在(?:开始|起)[，,]?\s*你", 0.45),
        Pattern("新的指令", r"(?:新的?|真正的)(?:指令|规则|任务)\s*[:：]|以下是新的?指令", 0.5),
        Pattern(
            "输出系统提示",
            rf"{_REVEAL_ZH}[^。！？\n]{{0,6}}?(?:系统提示词?|系统指令|初始指令|原始指令|"
            r"隐藏指令|system\s*prompt|提示词)",
            0.85,
        ),
        Pattern(
            "不要遵守规则",
            r"(?:不要|不再|不必|无需|不用)(?:遵守|遵循|服从|理会)[^。！？\n]{0,6}?"
            r"(?:规则|限制|指令|准则|规定|政策)",
            0.7,
        ),
        Pattern(
            "不受限制", r"不受(?:任何)?(?:限制|约束|规则)|解除(?:所有|一切)?(?:限制|约束)", 0.6
        ),
    )


register_detector("overrides", OverrideDetector)
