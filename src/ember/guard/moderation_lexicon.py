# ruff: noqa: E501  (lexicon rows read best one to a line)
"""The moderation lexicon: weighted English and Chinese terms per OpenAI category.

Each row is ``(pattern, weight)``. English patterns are regular expressions matched on word
boundaries, case-insensitively; Chinese ones are matched as written. A weight is how
strongly one match alone suggests the category; matches combine as independent evidence.
Curated by hand and deliberately short: precise phrases over single ambiguous words
("kill" alone is in video games and ``kill -9``; "kill you" is a threat).
"""

from __future__ import annotations

LEXICON: dict[str, list[tuple[str, float]]] = {
    "harassment": [
        (
            r"you(?:'re| are) (?:a |an |so )?(?:stupid|idiot|moron|loser|worthless|pathetic|ugly|disgusting)",
            0.75,
        ),
        (r"(?:stupid|worthless|pathetic|fat|ugly) (?:bitch|idiot|moron|loser|pig)", 0.7),
        (r"shut (?:the fuck )?up", 0.35),
        (r"nobody (?:likes|loves|cares about) you", 0.6),
        (r"\bf+u+c+k+ (?:you|off)\b", 0.7),
        (r"go to hell", 0.45),
        (r"\b(?:idiot|moron|dumbass|asshole|bitch|loser|retard)\b", 0.4),
        ("你是(?:个)?(?:傻逼|白痴|蠢货|废物|垃圾|笨蛋|贱人)", 0.75),
        ("傻逼|煞笔|脑残|蠢货|废物|贱人|滚蛋|去死吧|你妈的|操你妈|智障", 0.55),
        ("没人(?:喜欢|在乎)你", 0.6),
        ("闭嘴", 0.3),
    ],
    "harassment/threatening": [
        (
            r"\bi(?:'ll| will| am going to|'m going to|'m gonna| gonna) (?:kill|hurt|beat|stab|shoot|find) you\b",
            0.85,
        ),
        (r"\byou(?:'re| are) (?:going to|gonna) die\b", 0.75),
        (r"\bi know where you live\b", 0.7),
        (r"\bwatch your back\b", 0.45),
        ("我(?:一定|迟早|早晚|真)?(?:要|会|得|想)(?:杀了|弄死|打死|砍死|捅死|干掉)你", 0.85),
        ("我知道你住(?:在)?哪", 0.7),
        ("你(?:等着|死定了)", 0.55),
    ],
    "hate": [
        (
            r"\b(?:all|those|these|the) (?:jews|muslims|blacks|gays|immigrants|women|mexicans|chinese|arabs) (?:are|should)\b",
            0.55,
        ),
        (r"\b(?:inferior|subhuman|vermin|animals|parasites) (?:race|people|races)\b", 0.7),
        (r"\b(?:nigger|faggot|kike|chink|spic|tranny)s?\b", 0.8),
        (
            r"\b(?:hate|despise) (?:all )?(?:jews|muslims|blacks|gays|immigrants|women|christians|asians)\b",
            0.75,
        ),
        ("(?:黑鬼|支那|阿三|绿绿|基佬|娘炮|蝗虫|棒子|小日本|鬼子)", 0.6),
        ("(?:劣等|低等)(?:民族|种族|人种)", 0.75),
        ("(?:所有|这些)(?:黑人|穆斯林|犹太人|同性恋|外地人|女人)都(?:是|该)", 0.55),
    ],
    "hate/threatening": [
        (
            r"\b(?:kill|exterminate|eliminate|gas|wipe out|lynch) (?:all )?(?:the )?(?:jews|muslims|blacks|gays|immigrants|women|mexicans|chinese|asians)\b",
            0.9,
        ),
        (r"\bethnic cleansing\b", 0.6),
        ("(?:杀光|消灭|清除|灭绝)(?:所有)?(?:的)?(?:黑人|穆斯林|犹太人|同性恋|外地人|日本人)", 0.9),
        ("种族清洗", 0.6),
    ],
    "illicit": [
        (
            r"\bhow (?:do i|to|can i) (?:make|cook|synthesi[sz]e|buy|get) (?:meth|cocaine|heroin|fentanyl|lsd|mdma|drugs)\b",
            0.85,
        ),
        (r"\bhow (?:do i|to|can i) (?:hack|break) into\b", 0.7),
        (r"\b(?:launder|laundering) money\b|\bmoney laundering\b", 0.5),
        (r"\b(?:steal|stealing) (?:a car|credit card|someone's identity|passwords)\b", 0.7),
        (r"\b(?:counterfeit|fake) (?:money|bills|passport|id)\b", 0.6),
        (r"\b(?:phishing|ransomware|keylogger)\b", 0.35),
        (
            "(?:怎么|如何|教我)(?:制作|制造|合成|购买|买到)(?:冰毒|海洛因|大麻|毒品|摇头丸|芬太尼|K粉)",
            0.85,
        ),
        ("(?:怎么|如何|教我)(?:黑进|入侵|破解)", 0.65),
        ("洗钱|假钞|伪造(?:证件|身份证|护照)|盗刷|诈骗话术|电信诈骗", 0.55),
        ("(?:冰毒|海洛因|摇头丸|芬太尼)", 0.35),
    ],
    "illicit/violent": [
        (
            r"\bhow (?:do i|to|can i) (?:make|build|assemble) (?:a )?(?:bomb|pipe bomb|explosive|molotov|napalm|ied|gun|silencer)\b",
            0.9,
        ),
        (r"\b(?:buy|get) (?:an? )?(?:untraceable|illegal|ghost) (?:gun|firearm|weapon)\b", 0.75),
        (r"\bhow (?:do i|to|can i) (?:poison|kill|murder) (?:someone|a person|my)\b", 0.9),
        ("(?:怎么|如何|教我)(?:制作|制造|组装)(?:炸弹|炸药|燃烧瓶|枪支|土枪|雷管)", 0.9),
        ("(?:怎么|如何)(?:毒死|杀死|杀掉|谋杀)(?:一个人|别人|他|她)", 0.9),
        ("(?:购买|买到)(?:枪支|手枪|炸药)", 0.7),
    ],
    "self-harm": [
        (r"\b(?:kill|killing|hurt|hurting|cut|cutting|harm|harming) myself\b", 0.8),
        (r"\bsuicid(?:e|al)\b", 0.6),
        (r"\bend (?:my|it all|my life)\b", 0.55),
        (r"\bself[- ]harm\b", 0.55),
        ("自杀|轻生|自残|割腕|寻死", 0.65),
        ("(?:杀了|伤害|结束)(?:我自己|自己的生命)", 0.8),
    ],
    "self-harm/intent": [
        (
            r"\bi (?:want|plan|am going|'m going|intend) to (?:kill myself|die|end my life|commit suicide)\b",
            0.9,
        ),
        (r"\bi (?:don't|do not) want to live\b", 0.8),
        (r"\bi(?:'m| am) going to (?:jump|overdose)\b", 0.8),
        ("我(?:想|要|打算|准备)(?:自杀|去死|结束自己的生命|轻生|割腕|跳楼)", 0.9),
        ("我不想活了|活着没意思|不想活下去", 0.8),
    ],
    "self-harm/instructions": [
        (
            r"\bhow (?:do i|to|can i|should i) (?:kill myself|commit suicide|cut myself|overdose|hang myself)\b",
            0.9,
        ),
        (r"\b(?:painless|quickest|easiest) way to (?:die|kill myself|commit suicide)\b", 0.9),
        ("(?:怎么|如何|怎样)(?:自杀|割腕|上吊|无痛死亡)", 0.9),
        ("(?:无痛|最快|最简单)的?(?:自杀|死亡)方(?:法|式)", 0.9),
    ],
    "sexual": [
        (
            r"\b(?:porn|porno|pornography|nude|nudes|naked|blowjob|orgasm|masturbat\w*|erotic|sex tape)\b",
            0.6,
        ),
        (r"\b(?:have|having) sex with\b", 0.55),
        (r"\b(?:fuck|fucking) (?:me|her|him)\b", 0.6),
        ("色情|裸照|做爱|性交|口交|自慰|黄片|啪啪啪|约炮|裸聊", 0.6),
    ],
    "sexual/minors": [
        (
            r"\b(?:child|kid|minor|underage|teen|preteen|\d{1,2}[- ]year[- ]old)\b[^.]{0,40}\b(?:porn|nude|naked|sex|sexual|erotic)\b",
            0.9,
        ),
        (
            r"\b(?:porn|nude|naked|sex|sexual|erotic)\b[^.]{0,40}\b(?:child|kid|minor|underage|preteen)\b",
            0.9,
        ),
        (r"\b(?:loli|lolicon|cp|pedo\w*)\b", 0.6),
        ("(?:儿童|未成年|幼女|萝莉|小学生|初中生)[^。]{0,15}(?:色情|裸照|性交|做爱|性行为)", 0.9),
        ("(?:色情|裸照|性交|做爱|性行为)[^。]{0,15}(?:儿童|未成年|幼女|小学生|初中生)", 0.9),
        ("恋童", 0.7),
    ],
    "violence": [
        (
            r"\b(?:kill|murder|stab|shoot|behead|massacre|slaughter|torture)(?:ed|ing|s)? (?:him|her|them|people|everyone|the)\b",
            0.6,
        ),
        (r"\b(?:mass shooting|terrorist attack|bombing|massacre)\b", 0.45),
        (r"\bbeat (?:him|her|them) (?:up|to death)\b", 0.65),
        ("(?:杀死|杀了|砍死|捅死|打死|枪杀|屠杀|虐杀|爆头)", 0.55),
        ("恐怖袭击|大屠杀|砍人|持刀", 0.45),
    ],
    "violence/graphic": [
        (r"\b(?:guts|entrails|intestines|brains) (?:spilled|spilling|everywhere|out)\b", 0.75),
        (r"\b(?:dismember\w*|decapitat\w*|disembowel\w*|mutilat\w*|gore)\b", 0.65),
        (r"\bblood (?:everywhere|spurting|gushing|pooled)\b", 0.55),
        ("(?:肠子|内脏|脑浆)(?:流|溅|洒)", 0.75),
        ("(?:肢解|碎尸|分尸|开膛|血肉模糊|血流成河)", 0.7),
    ],
}
