"""What of a model's answer is worth reading aloud: prose, without code, markup or special tokens.

Pure text in, text out. Blocks (paragraphs, headings, list items, table rows) become one line each;
a line that does not end a sentence gets a full stop, so the speech engine pauses between them
instead of running "Installation Run the installer" together. Lines of one paragraph are joined.
"""

from __future__ import annotations

import html
import re

# Backslash escapes (`\*`) are swapped for private-use characters first, so the Markdown rules below
# cannot mistake them for syntax, and swapped back at the end.
_ESCAPABLE = "\\`*_{}[]()#+-.!|~>"
_ESCAPE = re.compile(r"\\([" + re.escape(_ESCAPABLE) + "])")
_PRIVATE_BASE = 0xE000

# Reasoning is not part of the answer. An unclosed <think> (an answer cut off while thinking) hides
# the rest; a lone </think> means the chat template opened the block, so everything before it goes.
_THINK_BLOCK = re.compile(r"<think>.*?(?:</think>|\Z)", re.IGNORECASE | re.DOTALL)
_THINK_CLOSE = re.compile(r"\A.*?</think>", re.IGNORECASE | re.DOTALL)

_SPECIAL_TOKENS = re.compile(
    r"<\|[^|<>\n]*\|>"  # <|im_start|>, <|eot_id|>, <|endoftext|> ...
    r"|</?s>|\[/?INST\]|<</?SYS>>|<(?:unk|pad|bos|eos)>|<(?:start|end)_of_turn>",
    re.IGNORECASE,
)

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")

# Tags are removed only for real HTML element names, so "x<y and z>w" is left alone.
_HTML_NAMES = (
    "a|abbr|b|big|blockquote|body|br|caption|center|cite|dd|del|details|dfn|div|dl|dt|em|font|"
    "h[1-6]|head|hr|html|i|img|input|ins|kbd|label|li|mark|ol|p|q|s|samp|section|small|span|"
    "strike|strong|style|sub|summary|sup|table|tbody|td|tfoot|th|thead|tr|tt|u|ul|var|wbr"
)
_HTML_CODE = re.compile(r"<(pre|code|script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_HTML_TAG = re.compile(rf"</?(?:{_HTML_NAMES})(?:\s[^<>]*)?/?>", re.IGNORECASE)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)

_ATX_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s+|$)(.*?)(?:\s+#+)?\s*$")
_SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(?:=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}(?:(?:\*\s*){3,}|(?:-\s*){3,}|(?:_\s*){3,})$")
_QUOTE = re.compile(r"^\s{0,3}>(?!=)\s?")  # ">=" starts a comparison, not a quotation
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,9}[.)])\s+(?:\[[ xX]\]\s+)?")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)+\|?\s*$")
_REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$")

_IMAGE = re.compile(r"!\[[^\]]*\](?:\([^)]*\)|\[[^\]]*\])")
_LINK = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])")
_FOOTNOTE = re.compile(r"\[\^[^\]]*\]")
_AUTOLINK = re.compile(r"<(?:https?://|mailto:|www\.)[^<>\s]*>", re.IGNORECASE)
_BARE_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>()\[\]]*[^\s<>()\[\].,;:!?'\"]", re.IGNORECASE)
_INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)

_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS_STAR = re.compile(r"\*(?=[^\s*])(.+?)(?<=[^\s*])\*")
# Underscores inside words (snake_case) are not emphasis, as in CommonMark.
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_LEFTOVER_MARKERS = re.compile(r"\*{2,}|_{2,}|~{2,}|`+")

_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?)\]])")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")
_SENTENCE_END = ".!?:;…。！？"
_CLOSING = "\"')]»”’*_"


def speakable_text(text: str) -> str:
    """The prose of `text` for a speech engine: fenced code blocks, inline code, HTML tags, special
    tokens and <think> blocks removed; Markdown syntax removed (link texts kept, images and bare URLs
    dropped); one line per paragraph, heading, list item or table row. Empty when nothing is left."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ESCAPE.sub(lambda m: chr(_PRIVATE_BASE + ord(m.group(1))), text)
    text = _THINK_BLOCK.sub("\n", text)
    text = _THINK_CLOSE.sub("\n", text)
    text = _SPECIAL_TOKENS.sub(" ", text)
    text = _HTML_COMMENT.sub(" ", text)
    text = _HTML_CODE.sub(" ", text)
    text = _HTML_BREAK.sub(" ", text)  # a space, not a new line: <br> often sits inside a table cell
    lines = [_inline(block) for block in _blocks(_without_fences(text.split("\n")))]
    lines = [line for line in lines if line]
    spoken = [_end_sentence(line) for line in lines[:-1]] + lines[-1:]
    joined = "\n".join(spoken)
    return re.sub("[\ue000-\ue0ff]", lambda m: chr(ord(m.group(0)) - _PRIVATE_BASE), joined)


def _without_fences(lines: list[str]) -> list[str]:
    """The lines outside fenced code blocks. A block closes with a fence of the same character at
    least as long; an unclosed block runs to the end (as CommonMark has it). A blank line stands in
    for each block so the paragraphs around it stay apart."""
    kept: list[str] = []
    fence = ""
    for line in lines:
        found = _FENCE.match(line)
        if fence:
            if found and found.group(1)[0] == fence[0] and len(found.group(1)) >= len(fence) \
                    and not line.strip()[len(found.group(1)):].strip():
                fence = ""
            continue
        if found:
            fence = found.group(1)
            kept.append("")
            continue
        kept.append(line)
    return kept


def _blocks(lines: list[str]) -> list[str]:
    """Markdown block structure, flattened: each heading, list item and table row is a block of its
    own; the lines of a paragraph are joined with spaces."""
    quoted = [_unquoted(line) for line in lines]
    lines = [line for _depth, line in quoted]
    blocks: list[str] = []
    current: list[str] = []
    in_table = False
    depth = 0

    def close() -> None:
        if current:
            blocks.append(" ".join(current))
            current.clear()

    for index, line in enumerate(lines):
        if quoted[index][0] != depth:  # a quotation starts or ends: a new block
            depth = quoted[index][0]
            in_table = False
            close()
        stripped = line.strip()
        if not stripped:
            in_table = False
            close()
            continue
        if _TABLE_SEPARATOR.match(line) and "|" in line:
            in_table = True
            continue
        if _RULE.match(line) or _REFERENCE_DEFINITION.match(line) or (_SETEXT_UNDERLINE.match(line) and current):
            close()  # a rule, a link definition, or the underline of a heading (the paragraph above)
            continue
        heading = _ATX_HEADING.match(line)
        if heading:
            close()
            blocks.append(heading.group(1))
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if _is_table_row(stripped, in_table or bool(_TABLE_SEPARATOR.match(following) and "|" in following)):
            close()
            cells = [cell.strip() for cell in stripped.strip("|").split("|")]
            blocks.append(", ".join(cell for cell in cells if cell))
            continue
        bullet = _BULLET.match(line)
        if bullet:
            close()
            current.append(line[bullet.end():].strip())
            continue
        current.append(stripped)
    close()
    return blocks


def _unquoted(line: str) -> tuple[int, str]:
    """A line's blockquote depth and the line without its markers ("> > text" is 2, "text")."""
    depth = 0
    while _QUOTE.match(line):
        line = _QUOTE.sub("", line, count=1)
        depth += 1
    return depth, line


def _is_table_row(stripped: str, in_table: bool) -> bool:
    """Whether a line is a row of a pipe table: inside a table (or just above its separator row), any
    line with a pipe; elsewhere only a line that starts, or ends, with one."""
    if "|" not in stripped:
        return False
    return in_table or stripped.startswith("|") or (stripped.endswith("|") and "|" in stripped[:-1])


def _inline(block: str) -> str:
    """One block without inline markup, on one line."""
    text = _INLINE_CODE.sub(" ", block)
    text = _IMAGE.sub(" ", text)
    text = _FOOTNOTE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(" ", text)
    text = _BARE_URL.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    for pattern in (_STRONG, _STRONG, _STRIKE, _EMPHASIS_STAR, _EMPHASIS_UNDERSCORE):
        text = pattern.sub(lambda m: m.group(m.lastindex or 0), text)
    text = _LEFTOVER_MARKERS.sub(" ", text)
    text = html.unescape(text)
    text = re.sub(r"\s+", " ", text)
    text = _EMPTY_BRACKETS.sub(" ", text)
    text = re.sub(r"\s+", " ", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text).strip()
    # What is left after removals may be bare punctuation ("`x`." -> "."): nothing to say.
    return text if any(ch.isalnum() for ch in text) else ""


def _end_sentence(line: str) -> str:
    """`line` with a full stop unless it already ends a sentence (closing quotes looked through)."""
    return line if line.rstrip(_CLOSING)[-1:] in tuple(_SENTENCE_END) else line + "."
