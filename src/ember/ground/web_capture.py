"""Plain text saved from a web page: the article without the page around it, in sections
under its title and headings.

A capture of a blog or forum page carries the site's navigation menus, share and follow
prompts ("点击下方…添加关注"), view counters, "recommended reading" link lists, comment
boxes, payment widgets and copyright footers. Left in, they become chunks that match many
questions a little (a menu names every topic of the site) and win retrieval over the
article. This module drops them and gives the rest structure:

* **boilerplate lines**: a known prompt, counter or footer phrase on a short line; a menu row
  (several short items separated by runs of spaces, or a breadcrumb with »); a run of three
  or more very short lines without punctuation (a vertical menu); the numbered links after a
  "推荐阅读" / "相关推荐" / "recommended" line;
* **title and headings**: the first short line without closing punctuation is the title; a
  later one followed by a longer line is a heading; each section's heading is
  ``title › heading``, so the title and heading travel with every chunk (into its terms, its
  embedded passage, and the coverage check's evidence).

A text with no such structure (one paragraph, a log) comes back as one section, unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Phrases that only boilerplate lines carry (on a line of at most _SHORT characters).
_BOILERPLATE = re.compile(
    r"点击下方|添加关注|更多干货|更多精彩|欢迎投稿|点个再看|本文地址|次点击|阅读[:：]\s*\(|"
    r"点赞[:：]|版权所有|Copyright|All Rights Reserved|复制链接|相关推荐|发表评论|登录后|"
    r"评论记录|回复评论|分类栏目|热门文章|关于我们|隐私政策|免责声明|联系我们|Scroll to Top|"
    r"扫码支付|钱包余额|余额充值|余额支付|抵扣说明|红包|在这里插入图片描述|商务合作|微信名片|"
    r"未查询到任何数据|前往充值|成就一亿技术人|领取后你会|实付|需支付|请填写|充值|余额|签到|网站公告|"
    r"点击重新获取|^评论\s*\d+$|"
    r"share this|follow us|sign up|log in|subscribe|cookie",
    re.IGNORECASE,
)
_ANYWHERE = re.compile(r"Copyright ©|All Rights Reserved|(\(\d+\)\s*\S+\s*){5}")
_LINK_LIST_START = re.compile(
    r"^(推荐阅读|相关推荐|相关阅读|猜你喜欢|recommended( reading)?|related)", re.IGNORECASE
)
_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$")
_CODE_LIKE = re.compile(
    r"^(import|from|def|class|return|print|for|if|with|self|pip|conda|graph)\b|[=`${}\[\]<>]|-->"
)
_LINK_ITEM = re.compile(r"^\s*(\[\d+\]|\d+[.、)]|[-•·*])")
_MENU_GAP = re.compile(r"\S\s{2,}\S")
_CLOSING = re.compile(r"[。！？!?.;；:：,，、)）」”\"]$")
_SHORT = 60
_TINY = 16
_HEADING_MAX = 30


@dataclass(frozen=True)
class CapturedSection:
    text: str
    heading: str | None


def _menu_row(line: str) -> bool:
    """A horizontal menu or a breadcrumb: short items separated by runs of spaces, or »."""
    if ("»" in line or "›" in line) and len(line) <= _SHORT:
        return True
    items = [item for item in re.split(r"\s{2,}", line.strip()) if item]
    return len(items) >= 2 and all(len(item) <= _TINY for item in items)


def _tiny(line: str) -> bool:
    return 0 < len(line) <= _TINY and not _CLOSING.search(line) and not _MD_HEADING.match(line)


def strip_boilerplate(lines: list[str]) -> list[str]:
    """``lines`` (stripped) without boilerplate and blank lines."""
    kept: list[str] = []
    in_links = in_menu = False
    run: list[str] = []  # consecutive tiny lines, held until we know the run's length

    def flush() -> None:
        if len(run) < 3:
            kept.extend(run)
        run.clear()

    for line in lines:
        if not line:  # a blank line neither ends a menu nor a run of tiny lines
            continue
        if in_links and _LINK_ITEM.match(line):
            continue
        in_links = False
        if len(line) <= _SHORT and _LINK_LIST_START.match(line):
            flush()
            in_links = True
            continue
        if (len(line) <= _SHORT and _BOILERPLATE.search(line)) or _ANYWHERE.search(line):
            flush()
            continue
        if _menu_row(line):  # the tiny lines around a menu are its items
            run.clear()
            in_menu = True
            continue
        if _tiny(line):
            if not in_menu:
                run.append(line)
            continue
        in_menu = False
        flush()
        kept.append(line)
    flush()
    return kept


def _heading_like(line: str) -> bool:
    if _MD_HEADING.match(line):
        return True
    return (
        0 < len(line) <= _HEADING_MAX
        and not _CLOSING.search(line)
        and line[0] not in "#/*-•>"
        and not _CODE_LIKE.search(line)
    )


def _heading_text(line: str) -> str:
    match = _MD_HEADING.match(line)
    return match.group(1) if match else line


def sections(text: str) -> list[CapturedSection]:
    """The article in ``text``: boilerplate dropped, sections under ``title › heading``."""
    lines = [line.strip() for line in text.splitlines()]
    kept = strip_boilerplate(lines)
    body = [line for line in kept if line]
    if len(body) < 3 or not any(len(line) > _HEADING_MAX for line in body):
        return [CapturedSection(text, None)]  # no structure to read: unchanged
    # The title: the first line left, when it is short (it may end with "!").
    title = _heading_text(body[0]) if len(body[0]) <= _SHORT else None
    out: list[CapturedSection] = []
    heading: str | None = None
    paragraph: list[str] = []
    for index, line in enumerate(body):
        following = body[index + 1] if index + 1 < len(body) else ""
        if index == 0 and title is not None:
            continue
        if _MD_HEADING.match(line) or (_heading_like(line) and len(following) > len(line)):
            if paragraph:
                out.append(CapturedSection("\n".join(paragraph), _label(title, heading)))
            heading, paragraph = _heading_text(line), []
            continue
        paragraph.append(line)
    if paragraph:
        out.append(CapturedSection("\n".join(paragraph), _label(title, heading)))
    return out or [CapturedSection(text, None)]


def _label(title: str | None, heading: str | None) -> str | None:
    if title and heading and heading != title:
        return f"{title} › {heading}"
    return heading or title
