"""Link forms the studio accepts, and the ones it refuses without connecting."""

import pytest

from app.core.errors import LinkError
from app.core.hub_links import (
    ModelLink,
    links_from_files_page,
    looks_like_link,
    parse_link_list,
    parse_model_link,
)

REPO = "bartowski/Llama-3.2-1B-Instruct-GGUF"
FILE = "Llama-3.2-1B-Instruct-Q4_K_M.gguf"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (f"https://huggingface.co/{REPO}/resolve/main/{FILE}", ModelLink(REPO, FILE)),
        (f"https://huggingface.co/{REPO}/resolve/main/{FILE}?download=true", ModelLink(REPO, FILE)),
        (f"https://huggingface.co/{REPO}/blob/main/{FILE}", ModelLink(REPO, FILE)),
        (f"https://hf.co/{REPO}/resolve/v1.0/{FILE}", ModelLink(REPO, FILE, "v1.0")),
        (f"https://huggingface.co/{REPO}/resolve/main/sub/dir/{FILE}", ModelLink(REPO, f"sub/dir/{FILE}")),
        (f"  {REPO}:{FILE}  ", ModelLink(REPO, FILE)),
        (f"{REPO}:Q8/{FILE}", ModelLink(REPO, f"Q8/{FILE}")),
    ],
)
def test_accepted_forms(link: str, expected: ModelLink) -> None:
    assert parse_model_link(link) == expected
    assert looks_like_link(link)


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        (f"http://huggingface.co/{REPO}/resolve/main/{FILE}", "plain http"),
        (f"https://evil.example/{REPO}/resolve/main/{FILE}", "only links to huggingface.co"),
        (f"https://huggingface.co.evil.example/{REPO}/resolve/main/{FILE}", "only links to huggingface.co"),
        (f"https://user:pw@huggingface.co/{REPO}/resolve/main/{FILE}", "only links to huggingface.co"),
        (f"file:///home/me/{FILE}", "only https://huggingface.co links"),
        (f"https://huggingface.co/{REPO}/resolve/main/../../etc/{FILE}", "'..'"),
        (f"https://huggingface.co/{REPO}/resolve/main/%2e%2e/secret.gguf", "'..'"),
        (f"https://huggingface.co/{REPO}/resolve/main/config.json", "not a .gguf file"),
        (f"https://huggingface.co/{REPO}", "not a file link"),
        (f"{REPO}:../x.gguf", "'..'"),
        (f"https://huggingface.co/{REPO}/resolve/main/.gguf", "the link has no model file name \\(only '.gguf'\\)"),
        (f"https://huggingface.co/{REPO}/resolve/main/sub/.gguf", "no model file name"),
        (f"https://huggingface.co/{REPO}/resolve/main/%2Egguf", "no model file name"),
        (f"{REPO}:.gguf", "no model file name"),
        (f"{REPO}:Q8/.GGUF", "no model file name"),
        (f"{REPO}:m-00001-of-00000.gguf", "a split model has 1 to 999 parts, this name says 0"),
        (f"{REPO}:m-00001-of-01000.gguf", "a split model has 1 to 999 parts, this name says 1000"),
        (f"{REPO}:m-00000-of-00003.gguf", "part 0 of 3 does not exist \\(parts are numbered 1 to 3\\)"),
        (f"https://hf.co/{REPO}/resolve/main/m-00004-of-00003.gguf", "part 4 of 3 does not exist"),
    ],
)
def test_refused_forms(link: str, reason: str) -> None:
    with pytest.raises(LinkError, match=reason):
        parse_model_link(link)


def test_local_names_are_not_links() -> None:
    assert not looks_like_link("chain-studio-demo.gguf")
    assert not looks_like_link("/home/me/models/x.gguf")


def test_link_lists_skip_comments_and_name_bad_lines() -> None:
    text = f"{REPO}:{FILE}\n\n---{REPO}:ignored.gguf\nhttps://hf.co/{REPO}/resolve/main/b.gguf\n"
    assert [link.filename for link in parse_link_list(text)] == [FILE, "b.gguf"]
    with pytest.raises(LinkError, match="line 2: "):
        parse_link_list(f"{REPO}:{FILE}\nhttp://x/y.gguf")


def test_split_models_name_every_part() -> None:
    link = parse_model_link(f"{REPO}:big/model-Q8_0-00001-of-00003.gguf")
    assert [p.filename for p in link.split_parts()] == [
        f"big/model-Q8_0-0000{n}-of-00003.gguf" for n in (1, 2, 3)
    ]
    assert parse_model_link(f"{REPO}:{FILE}").split_parts() == [ModelLink(REPO, FILE)]


def test_links_from_a_copied_files_and_versions_page() -> None:
    page = f"""{REPO}
like 120
Files and versions
main
{REPO}
.gitattributes 1.6 kB
README.md 9.2 kB
Llama-3.2-1B-Instruct-Q4_K_M.gguf 808 MB LFS
Llama-3.2-1B-Instruct-Q8_0.gguf
1.32 GB LFS  xet
Llama-3.2-1B-Instruct-f16.gguf 2.48 GB
Llama-3.2-1B-Instruct-Q4_K_M.gguf
"""
    links = links_from_files_page(page)
    assert [link.filename for link in links] == [
        "Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Llama-3.2-1B-Instruct-Q8_0.gguf", "Llama-3.2-1B-Instruct-f16.gguf"
    ]
    assert {link.repo_id for link in links} == {REPO}
    with pytest.raises(LinkError, match="does not name the repository"):
        links_from_files_page("model.gguf 1 GB")


def test_impossible_split_parts_are_refused_everywhere() -> None:
    """Not only typed links: a ModelLink made otherwise, a link list and a pasted files page."""
    with pytest.raises(LinkError, match="a split model has 1 to 999 parts"):
        ModelLink(REPO, "m-00001-of-00000.gguf").split_parts()
    with pytest.raises(LinkError, match="line 2: .*part 2 of 1 does not exist"):
        parse_link_list(f"{REPO}:{FILE}\n{REPO}:m-00002-of-00001.gguf")
    with pytest.raises(LinkError, match="a split model has 1 to 999 parts"):
        links_from_files_page(f"{REPO}\nm-00001-of-00000.gguf 1 GB")
    assert len(parse_model_link(f"{REPO}:m-00999-of-00999.gguf").split_parts()) == 999
    assert parse_model_link(f"{REPO}:m-00001-of-00001.gguf").split_parts() == [ModelLink(REPO, "m-00001-of-00001.gguf")]
