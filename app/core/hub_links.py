"""Hugging Face GGUF links: what they point to, or why they are refused, before any connection.

Accepted forms (REV defaults to main):
    https://huggingface.co/ORG/REPO/resolve/REV/PATH.gguf   (also /blob/, ?download=true, hf.co)
    ORG/REPO:PATH.gguf
Refused: other hosts, plain http, file://, paths with `..` (also percent-encoded), files that are
not .gguf, a file name that is only `.gguf`, and split parts (`-00002-of-00003.gguf`) whose numbers
are not 1..count or whose count is not 1..MAX_SPLIT_PARTS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from app.core.errors import LinkError
from app.core.prompt_list import IGNORE_PREFIX

HUB_HOSTS = {"huggingface.co", "www.huggingface.co", "hf.co"}
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REPO_ID = re.compile(rf"^{_NAME}/{_NAME}$")
_SHORT_FORM = re.compile(rf"^(?P<repo>{_NAME}/{_NAME}):(?P<path>[^\s]+)$")
_SPLIT_PART = re.compile(r"^(?P<stem>.*)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$", re.IGNORECASE)
_PAGE_FILE = re.compile(r"(?<![\w./-])([\w][\w.+-]*\.gguf)\b", re.IGNORECASE)
MAX_SPLIT_PARTS = 999
"""The most parts a split model may have (llama.cpp's gguf-split names allow 99,999; real ones use
a few dozen)."""


@dataclass(frozen=True)
class ModelLink:
    """A GGUF file on the Hub."""

    repo_id: str
    filename: str  # path inside the repo
    revision: str = "main"

    @property
    def basename(self) -> str:
        return self.filename.rsplit("/", 1)[-1]

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/resolve/{self.revision}/{self.filename}"

    def split_parts(self) -> list["ModelLink"]:
        """All parts of a split model (`-00001-of-00003.gguf`); just this file otherwise. LinkError
        when the part numbers are impossible."""
        match = _SPLIT_PART.match(self.filename)
        if not match:
            return [self]
        total = _split_count(match, self.filename)
        return [
            ModelLink(self.repo_id, f"{match.group('stem')}-{n:05d}-of-{total:05d}.gguf", self.revision)
            for n in range(1, total + 1)
        ]


def _split_count(match: re.Match[str], shown: str) -> int:
    """The part count of a split model's file name, checked against its part number."""
    part, total = int(match.group("part")), int(match.group("total"))
    if not 1 <= total <= MAX_SPLIT_PARTS:
        raise LinkError(
            f"{shown}: a split model has 1 to {MAX_SPLIT_PARTS} parts, this name says {total}; "
            "check the link (…-00001-of-00003.gguf)"
        )
    if not 1 <= part <= total:
        raise LinkError(
            f"{shown}: part {part} of {total} does not exist (parts are numbered 1 to {total}); "
            "check the link (…-00001-of-00003.gguf)"
        )
    return total


def _check_path(path: str, shown: str) -> str:
    decoded = unquote(path)
    parts = decoded.split("/")
    if any(part in ("..", ".") for part in parts) or "\\" in decoded or decoded.startswith("/"):
        raise LinkError(f"{shown}: the file path may not contain '..' or absolute parts")
    if not decoded.lower().endswith(".gguf"):
        raise LinkError(f"{shown}: not a .gguf file (Chain Studio runs GGUF models only)")
    basename = parts[-1]
    if not basename[: -len(".gguf")].strip(" ."):  # `.gguf` alone would be saved as a hidden file
        raise LinkError(
            f"{shown}: the link has no model file name (only {basename!r}); copy the link of a file "
            "such as NAME-Q4_K_M.gguf"
        )
    split = _SPLIT_PART.match(decoded)
    if split:
        _split_count(split, shown)
    return decoded


def looks_like_link(text: str) -> bool:
    """True for text meant as a link (a URL or ORG/REPO:FILE), as opposed to a local file name."""
    stripped = text.strip()
    return "://" in stripped or bool(_SHORT_FORM.match(stripped))


def parse_model_link(text: str) -> ModelLink:
    """The Hub file a link points to; LinkError saying why when it is refused."""
    shown = text.strip()
    short = _SHORT_FORM.match(shown)
    if short and "://" not in shown:
        return ModelLink(short.group("repo"), _check_path(short.group("path"), shown))
    parts = urlsplit(shown)
    if parts.scheme != "https":
        if parts.scheme == "http":
            raise LinkError(f"{shown}: plain http is refused; use the https:// link")
        raise LinkError(f"{shown}: only https://huggingface.co links (or ORG/REPO:FILE.gguf) are downloaded")
    host = (parts.hostname or "").lower()
    if host not in HUB_HOSTS or parts.username or parts.password or parts.port not in (None, 443):
        raise LinkError(f"{shown}: only links to huggingface.co or hf.co are downloaded")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 5 or segments[2] not in ("resolve", "blob"):
        raise LinkError(
            f"{shown}: not a file link; open the file on Hugging Face and copy its download link "
            "(…/resolve/main/NAME.gguf)"
        )
    repo_id = f"{segments[0]}/{segments[1]}"
    if not _REPO_ID.match(repo_id):
        raise LinkError(f"{shown}: {repo_id} is not a repository name")
    revision = unquote(segments[3])
    if revision in ("..", ".") or "/" in revision:
        raise LinkError(f"{shown}: invalid revision {revision!r}")
    filename = _check_path("/".join(segments[4:]), shown)
    return ModelLink(repo_id, filename, revision)


def display_name(ref: str) -> str:
    """What a model reference is called in transcripts: the file name, for paths and links."""
    if looks_like_link(ref):
        try:
            return parse_model_link(ref).basename
        except LinkError:
            pass
    return ref.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def links_from_text(text: str) -> list[ModelLink]:
    """Links from a "Model URLs" field: one per line, or the text of a Files-and-versions page."""
    try:
        return parse_link_list(text)
    except LinkError as first:
        if ".gguf" not in (text or "").lower():
            raise
        try:
            return links_from_files_page(text)
        except LinkError:
            raise first from None


def parse_link_list(text: str) -> list[ModelLink]:
    """One link per line; blank lines and lines starting with --- are skipped. The first refused
    line raises LinkError naming its line number."""
    links = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(IGNORE_PREFIX):
            continue
        try:
            links.append(parse_model_link(stripped))
        except LinkError as exc:
            raise LinkError(f"line {number}: {exc}") from None
    return links


def links_from_files_page(text: str, repo_id: str | None = None) -> list[ModelLink]:
    """Every .gguf file named in text copied from a repo's "Files and versions" page. The repo is
    the first ORG/REPO name in the text unless given."""
    if repo_id is None:
        for token in re.findall(rf"(?<![\w/.-]){_NAME}/{_NAME}(?![\w/])", text or ""):
            if not token.lower().endswith(".gguf"):
                repo_id = token
                break
    if repo_id is None or not _REPO_ID.match(repo_id):
        raise LinkError("the pasted text does not name the repository (ORG/REPO); paste it with the page title")
    seen: dict[str, ModelLink] = {}
    for name in _PAGE_FILE.findall(text or ""):
        seen.setdefault(name, ModelLink(repo_id, _check_path(name, f"{repo_id}:{name}")))
    if not seen:
        raise LinkError(f"no .gguf files found in the pasted text of {repo_id}")
    return list(seen.values())
