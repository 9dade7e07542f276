"""Header checks: every kind of bad file is refused with its own message, before llama.cpp."""

import struct
from pathlib import Path

import pytest

from app.core.errors import ModelFileError
from app.models.gguf_file import inspect_gguf
from app.models.local_backend import LocalBackend


def refusal(path: Path) -> str:
    with pytest.raises(ModelFileError) as caught:
        inspect_gguf(path)
    return caught.value.reason


def test_demo_model_header(demo_model: Path) -> None:
    info = inspect_gguf(demo_model)
    assert info.architecture == "llama"
    assert info.name == "Chain Studio demo model"
    assert info.vocab_size == 286
    assert info.context_length == 4096
    assert info.quantization == "F32"
    assert info.chat_template == "{% for message in messages %}{{ message['content'] }}{% endfor %}"
    assert info.file_size == demo_model.stat().st_size
    assert info.parameter_count > 0 and info.size_label.endswith("K")


def test_tensor_table_matches_the_gguf_library(demo_model: Path) -> None:
    """The studio reads headers itself (fast); it must agree with the reference reader."""
    import gguf

    from app.models.gguf_file import _HeaderParser

    reference = gguf.GGUFReader(demo_model)
    data = demo_model.read_bytes()
    _, entries, _ = _HeaderParser(data, len(data)).parse(len(reference.tensors), len(reference.fields) - 3)
    assert [(e.name, e.data_offset, e.n_bytes, e.ggml_type) for e in entries] == [
        (t.name, t.data_offset, int(t.n_bytes), t.tensor_type.name) for t in reference.tensors
    ]


@pytest.fixture
def bad_files(tmp_path: Path, demo_model: Path) -> dict[str, Path]:
    data = demo_model.read_bytes()
    files = {
        "empty": b"",
        "html": b"<!DOCTYPE html>\n<html><head><title>Hugging Face</title></head></html>",
        "half": data[: len(data) // 2],
        "json": b'{"error": "Repository not found"}',
        "ggml": b"tjgg" + b"\0" * 64,
        "version": b"GGUF" + struct.pack("<IQQ", 9, 1, 1) + b"\0" * 64,
        "absurd": b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2**40) + b"\0" * 64,
        "header-cut": data[:200],
        "table-cut": data[:3000],
        "bad-type": b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 4) + b"name" + struct.pack("<I", 99),
    }
    out = {}
    for name, content in files.items():
        out[name] = tmp_path / f"{name}.gguf"
        out[name].write_bytes(content)
    return out


def test_each_bad_file_gets_its_own_message(bad_files: dict[str, Path], tmp_path: Path) -> None:
    reasons = {name: refusal(path) for name, path in bad_files.items()}
    reasons["missing"] = refusal(tmp_path / "nowhere.gguf")
    reasons["folder"] = refusal(tmp_path)
    assert "empty (0 bytes)" in reasons["empty"]
    assert "HTML web page" in reasons["html"]
    assert reasons["half"].startswith("truncated: the file has")
    assert "50% present" in reasons["half"]
    assert "JSON" in reasons["json"]
    assert "old GGML-format" in reasons["ggml"]
    assert "unsupported GGUF version 9" in reasons["version"]
    assert "corrupt header: it claims 1,099,511,627,776 tensors" in reasons["absurd"]
    assert reasons["header-cut"].startswith("truncated: its 12 tensors and 23 metadata entries")
    assert reasons["table-cut"].startswith("truncated: the header goes beyond the end of the file (3,000 bytes)")
    assert reasons["bad-type"] == "corrupt GGUF header: unknown metadata value type 99 for key name"
    assert reasons["missing"] == "no such file"
    assert "folder" in reasons["folder"]
    assert len(set(reasons.values())) == len(reasons)


def test_backend_refuses_before_starting_a_worker(bad_files: dict[str, Path], tmp_path: Path) -> None:
    backend = LocalBackend(log_dir=tmp_path)
    for path in bad_files.values():
        with pytest.raises(ModelFileError):
            backend.load(path)
        assert backend._worker is None  # llama.cpp never saw the file
