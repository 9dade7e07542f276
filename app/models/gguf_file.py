"""Read a GGUF file's header without loading the model, and refuse files that are not usable GGUF.

llama.cpp trusts the files it is given: a truncated download or an HTML page saved as `.gguf` can
crash it or give a confusing error. Everything here reads only the header (metadata and tensor
table) and checks that the tensor data the table promises is really in the file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gguf
from gguf.gguf_reader import ReaderField

from app.core.errors import ModelFileError

SUPPORTED_VERSIONS = (2, 3)
_MIN_KV_BYTES = 13  # key length (8) + one key byte + value type (4)
_MIN_TENSOR_INFO_BYTES = 33  # name length, one name byte, n_dims, one dim, type, offset
_MAX_COUNT = 10_000_000  # far beyond any real model's tensors or metadata entries


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor table."""

    name: str
    ggml_type: str
    n_elements: int
    n_bytes: int
    data_offset: int


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF header says about a model."""

    path: str
    file_name: str
    file_size: int
    version: int
    architecture: str
    name: str
    size_label: str
    parameter_count: int
    quantization: str
    context_length: int | None
    vocab_size: int | None
    chat_template: str | None
    block_count: int | None
    embedding_length: int | None
    head_count: int | None
    head_count_kv: int | None
    tensor_count: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class _HeaderReader(gguf.GGUFReader):
    """GGUFReader that records the tensor table without mapping tensor data, so a truncated file
    can be diagnosed instead of failing inside numpy."""

    entries: list[TensorEntry]

    def _build_tensors(self, start_offs: int, fields: list[ReaderField]) -> None:
        entries = []
        for field in fields:
            _name_len, name_data, _n_dims, dims, raw_dtype, offset_tensor = field.parts
            ggml_type = gguf.GGMLQuantizationType(int(raw_dtype[0]))
            n_elements = 1
            for dim in dims.tolist():
                n_elements *= int(dim)
            block_size, type_size = gguf.GGML_QUANT_SIZES[ggml_type]
            entries.append(
                TensorEntry(
                    name=bytes(name_data).decode("utf-8", errors="replace"),
                    ggml_type=ggml_type.name,
                    n_elements=n_elements,
                    n_bytes=n_elements * type_size // block_size,
                    data_offset=int(start_offs + int(offset_tensor[0])),
                )
            )
        self.entries = entries
        self.tensors = []


def _describe_non_gguf(head: bytes) -> str:
    """Say what a file that lacks the GGUF magic most likely is."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text[:512]:
        return (
            "this is an HTML web page saved with a .gguf name, not a model; on Hugging Face use the "
            "file's download link (…/resolve/…) instead of the page link (…/blob/…)"
        )
    if text.startswith((b"{", b"[")):
        return "this is a JSON text file, not a GGUF model"
    if head[:4] in (b"ggml", b"lmgg", b"ggjt", b"tjgg", b"ggmf", b"fmgg"):
        return "this is an old GGML-format model; llama.cpp now reads only GGUF (convert it or download a .gguf)"
    if head[:2] == b"PK":
        return "this is a ZIP archive (perhaps a PyTorch or safetensors checkpoint), not a GGUF model"
    if head[:4] == b"\x7fELF" or head[:2] == b"MZ":
        return "this is an executable program, not a GGUF model"
    shown = head[:8].hex(" ")
    return f"not a GGUF file: it starts with bytes {shown} instead of 'GGUF'"


def _field(reader: gguf.GGUFReader, key: str) -> Any:
    field = reader.get_field(key)
    if field is None:
        return None
    try:
        return field.contents()
    except (UnicodeDecodeError, IndexError, ValueError):
        return None


def _array_length(reader: gguf.GGUFReader, key: str) -> int | None:
    field = reader.get_field(key)
    return len(field.data) if field is not None else None


def format_parameter_count(count: int) -> str:
    """A size label in the usual style: 135M, 0.5B, 8B."""
    if count >= 1_000_000_000:
        value = count / 1_000_000_000
        return f"{value:.1f}B".replace(".0B", "B") if value < 10 else f"{round(value)}B"
    if count >= 1_000_000:
        return f"{round(count / 1_000_000)}M"
    return f"{round(count / 1000)}K" if count >= 1000 else str(count)


def _quantization(reader: gguf.GGUFReader, entries: list[TensorEntry]) -> str:
    file_type = _field(reader, "general.file_type")
    if isinstance(file_type, int):
        try:
            return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    # No (known) file type: the type holding most of the bytes is what people call the quantization.
    totals: dict[str, int] = {}
    for entry in entries:
        totals[entry.ggml_type] = totals.get(entry.ggml_type, 0) + entry.n_bytes
    return max(totals, key=totals.__getitem__) if totals else "unknown"


def inspect_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Read and check a GGUF header. Raises ModelFileError saying what is wrong with a bad file."""
    file_path = Path(path)
    shown = str(file_path)
    if not file_path.exists():
        raise ModelFileError(shown, "no such file")
    if file_path.is_dir():
        raise ModelFileError(shown, "this is a folder, not a model file")
    try:
        size = file_path.stat().st_size
        with open(file_path, "rb") as handle:
            head = handle.read(1024)
    except OSError as exc:
        raise ModelFileError(shown, f"cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise ModelFileError(shown, "the file is empty (0 bytes): the download never completed")
    if head[:4] != b"GGUF":
        raise ModelFileError(shown, _describe_non_gguf(head))
    if size < 24:
        raise ModelFileError(shown, f"truncated: only {size} bytes, not even a whole GGUF header")
    version, tensor_count, kv_count = struct.unpack_from("<IQQ", head, 4)
    if version & 0xFFFF == 0:
        raise ModelFileError(shown, "this GGUF file was written for big-endian machines")
    if version not in SUPPORTED_VERSIONS:
        raise ModelFileError(shown, f"unsupported GGUF version {version} (supported: 2 and 3)")
    if kv_count > _MAX_COUNT or tensor_count > _MAX_COUNT:
        raise ModelFileError(
            shown,
            f"corrupt header: it claims {tensor_count:,} tensors and {kv_count:,} metadata entries",
        )
    if kv_count * _MIN_KV_BYTES + tensor_count * _MIN_TENSOR_INFO_BYTES > size:
        raise ModelFileError(
            shown,
            f"truncated: its {tensor_count} tensors and {kv_count} metadata entries cannot fit in "
            f"{size:,} bytes; the download was probably interrupted",
        )
    try:
        reader = _HeaderReader(file_path)
    except Exception as exc:  # gguf raises ValueError, KeyError, IndexError... on damaged headers
        raise ModelFileError(
            shown, f"corrupt or truncated GGUF header ({type(exc).__name__}: {exc})"
        ) from exc
    entries = reader.entries
    needed = max((e.data_offset + e.n_bytes for e in entries), default=reader.data_offset)
    if needed > size:
        percent = 100 * size / needed
        raise ModelFileError(
            shown,
            f"truncated: the file has {size:,} bytes but its tensors need {needed:,} "
            f"({percent:.0f}% present); the download was probably interrupted",
        )
    if not entries:
        raise ModelFileError(shown, "the file holds no tensors (weights): it is not a usable model")

    arch = _field(reader, "general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelFileError(shown, "the header has no general.architecture: not a usable model")

    def arch_int(key: str) -> int | None:
        value = _field(reader, f"{arch}.{key}")
        if isinstance(value, list):  # some architectures store per-layer head counts
            value = max(value) if value else None
        return int(value) if isinstance(value, (int, float)) else None

    parameter_count = sum(e.n_elements for e in entries)
    template = _field(reader, "tokenizer.chat_template")
    return GGUFInfo(
        path=str(file_path.resolve()),
        file_name=file_path.name,
        file_size=size,
        version=int(version),
        architecture=arch,
        name=str(_field(reader, "general.name") or file_path.stem),
        size_label=str(_field(reader, "general.size_label") or format_parameter_count(parameter_count)),
        parameter_count=parameter_count,
        quantization=_quantization(reader, entries),
        context_length=arch_int("context_length"),
        vocab_size=_array_length(reader, "tokenizer.ggml.tokens") or arch_int("vocab_size"),
        chat_template=template if isinstance(template, str) else None,
        block_count=arch_int("block_count"),
        embedding_length=arch_int("embedding_length"),
        head_count=arch_int("attention.head_count"),
        head_count_kv=arch_int("attention.head_count_kv"),
        tensor_count=len(entries),
    )
