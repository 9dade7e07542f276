"""Header checks: every kind of bad file is refused with its own message, before llama.cpp."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.errors import ModelFileError
from app.models.gguf_file import inspect_gguf
from app.models.local_backend import LocalBackend
from app.settings import PROJECT_ROOT


def refusal(path: Path) -> str:
    with pytest.raises(ModelFileError) as caught:
        inspect_gguf(path)
    return caught.value.reason


def test_demo_model_header(demo_model: Path) -> None:
    info = inspect_gguf(demo_model)
    assert info.architecture == "llama"
    assert info.name == "Chain Studio demo model"
    assert info.vocab_size == 294
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


def gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_nested_gguf(path: Path, depth: int) -> Path:
    """A small GGUF (one F32 tensor of 32 zeros) whose metadata key `test.nested` is an array of
    arrays `depth` deep around one byte, written byte by byte as the format says."""
    metadata = gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string("llama")
    nested = gguf_string("test.nested") + struct.pack("<I", 9)
    for _ in range(depth - 1):
        nested += struct.pack("<IQ", 9, 1)  # an array holding one array...
    nested += struct.pack("<IQ", 0, 1) + b"\x07"  # ...holding one uint8
    tensor = gguf_string("weights") + struct.pack("<IQIQ", 1, 32, 0, 0)  # 1 dim of 32, F32, offset 0
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + metadata + nested + tensor
    header += b"\0" * (-len(header) % 32)
    path.write_bytes(header + b"\0" * 128)
    return path


def test_nested_metadata_arrays_are_read_up_to_a_small_depth(tmp_path: Path) -> None:
    assert inspect_gguf(write_nested_gguf(tmp_path / "two.gguf", 2)).tensor_count == 1
    assert inspect_gguf(write_nested_gguf(tmp_path / "eight.gguf", 8)).architecture == "llama"
    assert refusal(write_nested_gguf(tmp_path / "nine.gguf", 9)) == (
        "corrupt GGUF header: metadata test.nested nests arrays more than 8 deep: the file is damaged or "
        "not a real model"
    )


def test_deeply_nested_arrays_are_refused_not_a_recursion_error(tmp_path: Path) -> None:
    deep = write_nested_gguf(tmp_path / "deep.gguf", 1500)
    assert deep.stat().st_size < 20_000  # the 18 KB file of the report
    assert "nests arrays more than 8 deep" in refusal(deep)
    done = run_info(deep)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and "nests arrays more than 8 deep" in json.loads(lines[0])["error"]
    assert done.stderr.startswith("error: ")


def run_info(path: Path) -> subprocess.CompletedProcess[str]:
    # A timeout, so a file that blocks the reader fails the test instead of hanging it.
    return subprocess.run([sys.executable, "-m", "app", "info", str(path)], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=60)


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


@needs_fifo
def test_a_fifo_named_gguf_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "x.gguf"
    os.mkfifo(fifo)
    done = run_info(fifo)  # before the fix: blocked for ever waiting for a writer
    assert done.returncode == 1 and "Traceback" not in done.stderr
    message = json.loads(done.stdout)["error"]
    assert message == f"{fifo}: this is a named pipe (FIFO), not a regular file: only regular .gguf files can be models"
    assert refusal(fifo) == "this is a named pipe (FIFO), not a regular file: only regular .gguf files can be models"
    assert refusal(Path(os.devnull)).startswith("this is a device, not a regular file")


@needs_fifo
def test_the_model_list_survives_any_file(tmp_path: Path, demo_model: Path) -> None:
    """One bad file in the models folder shows with its problem; the list and the page still open."""
    from app.models.model_folder import describe_model_file, list_model_files
    from app.services import Services
    from app.ui.panels.models_panel import model_choice

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "chain-studio-demo.gguf").write_bytes(demo_model.read_bytes())
    write_nested_gguf(folder / "deep.gguf", 1500)
    (folder / "page.gguf").write_text("<html>Sign in</html>")
    os.mkfifo(folder / "pipe.gguf")
    (folder / "sub.gguf").mkdir()
    files = list_model_files(folder)  # stat only: the FIFO is never opened
    assert [p.name for p in files] == ["chain-studio-demo.gguf", "deep.gguf", "page.gguf"]
    described = [describe_model_file(p) for p in files]
    assert described[0].info is not None and described[0].problem == ""
    assert described[1].info is None and "nests arrays more than 8 deep" in described[1].problem
    assert described[2].info is None and "HTML web page" in described[2].problem
    assert describe_model_file(folder / "pipe.gguf").problem.startswith("this is a named pipe (FIFO)")
    services = Services(models_dir=folder)
    try:
        labels = [model_choice(services, p) for p in files]
    finally:
        services.close()
    assert labels[0][0].startswith("chain-studio-demo.gguf · llama · ")
    assert labels[1] == ("deep.gguf (not usable: corrupt GGUF header: metadata test.nested nests arrays more than "
                         "8 deep: the file is damaged or not a real model)", "deep.gguf")
    assert labels[2][0].startswith("page.gguf (not usable: this is an HTML web page")


def test_the_page_opens_over_a_models_folder_of_bad_files(tmp_path: Path, studio_home: Path) -> None:
    from app.services import Services
    from app.ui.app import build_ui

    folder = tmp_path / "models"
    folder.mkdir()
    write_nested_gguf(folder / "a-deep.gguf", 1500)  # first: its header is shown when the page opens
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "b-pipe.gguf")
    services = Services(models_dir=folder)
    try:
        page = build_ui(services)
    finally:
        services.close()
    shown = {block.elem_id: block for block in page.blocks.values() if getattr(block, "elem_id", None)}
    assert [label for label, _ in shown["model-pick"].choices] == [
        "a-deep.gguf (not usable: corrupt GGUF header: metadata test.nested nests arrays more than 8 deep: the "
        "file is damaged or not a real model)"
    ]
    infos = [block.value for block in page.blocks.values() if "Cannot use this file" in str(getattr(block, "value", ""))]
    assert len(infos) == 1 and "nests arrays more than 8 deep" in infos[0]
