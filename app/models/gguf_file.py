"""Read a GGUF file's header without loading the model, and refuse files that are not usable GGUF.

llama.cpp trusts the files it is given: a truncated download or an HTML page saved as `.gguf` can
crash it or give a confusing error. Everything here reads only the header (metadata and tensor
table) and checks that the tensor data the table promises is really in the file. It reads the
bytes itself: fast even for a 152k-token vocabulary, and bounds-checked against damaged files.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gguf

from app.core.errors import ModelFileError

SUPPORTED_VERSIONS = (2, 3)
_MIN_KV_BYTES = 13  # key length (8) + one key byte + value type (4)
_MIN_TENSOR_INFO_BYTES = 33  # name length, one name byte, n_dims, one dim, type, offset
_MAX_COUNT = 10_000_000  # far beyond any real model's tensors or metadata entries
MAX_ARRAY_NESTING = 8
"""Arrays of arrays are rare in real models (none nests deeper than 2); a deeper header is damaged or
hostile, and reading it recursively would exhaust Python's stack."""


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
    feed_forward_length: int | None
    tensor_count: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class _OutOfData(Exception):
    """The header claims more bytes than the file has."""


@dataclass(frozen=True)
class _ArrayInfo:
    """A metadata array: its length, and its values when it is short."""

    count: int
    values: list[Any] | None


_SCALARS = {
    0: struct.Struct("<B"), 1: struct.Struct("<b"), 2: struct.Struct("<H"), 3: struct.Struct("<h"),
    4: struct.Struct("<I"), 5: struct.Struct("<i"), 6: struct.Struct("<f"), 7: struct.Struct("<?"),
    10: struct.Struct("<Q"), 11: struct.Struct("<q"), 12: struct.Struct("<d"),
}
_STRING, _ARRAY = 8, 9
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_SHORT_ARRAY = 64  # longer arrays (vocabulary, scores, merges) are counted and skipped


class _HeaderParser:
    """Reads the GGUF header (metadata and tensor table) straight from the bytes.

    gguf.GGUFReader builds a numpy view for every vocabulary string: seconds for a 152k-token
    vocabulary, on every load. Here long arrays are only skipped, every read is bounds-checked,
    and a damaged header says where it breaks."""

    def __init__(self, data: Any, size: int) -> None:
        self.data = data
        self.size = size
        self.pos = 0

    def take(self, fmt: struct.Struct) -> Any:
        if self.pos + fmt.size > self.size:
            raise _OutOfData
        value = fmt.unpack_from(self.data, self.pos)[0]
        self.pos += fmt.size
        return value

    def skip(self, count: int) -> None:
        if count < 0 or self.pos + count > self.size:
            raise _OutOfData
        self.pos += count

    def string(self) -> str:
        length = self.take(_U64)
        start = self.pos
        self.skip(length)
        return bytes(self.data[start : self.pos]).decode("utf-8", errors="replace")

    def value(self, value_type: int, key: str, depth: int = 0) -> Any:
        """One metadata value; `depth` counts the arrays it is nested in."""
        if value_type in _SCALARS:
            return self.take(_SCALARS[value_type])
        if value_type == _STRING:
            return self.string()
        if value_type == _ARRAY:
            if depth >= MAX_ARRAY_NESTING:
                raise ValueError(
                    f"metadata {key} nests arrays more than {MAX_ARRAY_NESTING} deep: "
                    "the file is damaged or not a real model"
                )
            item_type, count = self.take(_U32), self.take(_U64)
            if count > self.size:
                raise ValueError(f"metadata array {key} claims {count:,} items")
            if count <= _SHORT_ARRAY:
                return _ArrayInfo(count, [self.value(item_type, key, depth + 1) for _ in range(count)])
            if item_type in _SCALARS:
                self.skip(count * _SCALARS[item_type].size)
            elif item_type == _STRING:
                for _ in range(count):
                    self.skip(self.take(_U64))
            else:
                for _ in range(count):
                    self.value(item_type, key, depth + 1)
            return _ArrayInfo(count, None)
        raise ValueError(f"unknown metadata value type {value_type} for key {key}")

    def parse(self, tensor_count: int, kv_count: int) -> tuple[dict[str, Any], list[TensorEntry], int]:
        """Metadata, tensor table and where tensor data starts."""
        self.pos = 24
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = self.string()
            metadata[key] = self.value(self.take(_U32), key)
        tables = []
        for _ in range(tensor_count):
            name = self.string()
            n_dims = self.take(_U32)
            if n_dims > 8:
                raise ValueError(f"tensor {name} claims {n_dims} dimensions")
            dims = [self.take(_U64) for _ in range(n_dims)]
            tables.append((name, dims, self.take(_U32), self.take(_U64)))
        alignment = metadata.get("general.alignment", 32)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"invalid general.alignment {alignment!r}")
        data_start = -(-self.pos // alignment) * alignment
        entries = []
        for name, dims, type_id, offset in tables:
            try:
                ggml_type = gguf.GGMLQuantizationType(type_id)
            except ValueError:
                raise ValueError(f"tensor {name} has unknown type {type_id}") from None
            n_elements = 1
            for dim in dims:
                n_elements *= dim
            block_size, type_size = gguf.GGML_QUANT_SIZES[ggml_type]
            entries.append(TensorEntry(name, ggml_type.name, n_elements,
                                       n_elements * type_size // block_size, data_start + offset))
        return metadata, entries, data_start


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


def _scalar(metadata: dict[str, Any], key: str) -> Any:
    value = metadata.get(key)
    if isinstance(value, _ArrayInfo):  # some architectures store per-layer values: take the largest
        numbers = [v for v in value.values or [] if isinstance(v, (int, float))]
        return max(numbers) if numbers else None
    return value


def _array_length(metadata: dict[str, Any], key: str) -> int | None:
    value = metadata.get(key)
    return value.count if isinstance(value, _ArrayInfo) else None


def format_parameter_count(count: int) -> str:
    """A size label in the usual style: 135M, 0.5B, 8B."""
    if count >= 1_000_000_000:
        value = count / 1_000_000_000
        return f"{value:.1f}B".replace(".0B", "B") if value < 10 else f"{round(value)}B"
    if count >= 1_000_000:
        return f"{round(count / 1_000_000)}M"
    return f"{round(count / 1000)}K" if count >= 1000 else str(count)


def _quantization(metadata: dict[str, Any], entries: list[TensorEntry]) -> str:
    file_type = metadata.get("general.file_type")
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
    try:
        # Checked before opening: opening a FIFO for reading waits for a writer (for ever), and
        # opening some devices has effects of its own.
        problem = _not_regular(os.stat(file_path).st_mode)
        if problem:
            raise ModelFileError(shown, problem)
        # Non-blocking and checked again once open, so a file swapped after the stat cannot hang.
        fd = os.open(file_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ModelFileError(shown, "no such file") from None
    except OSError as exc:
        raise ModelFileError(shown, f"cannot be read ({exc.strerror or exc})") from exc
    with open(fd, "rb") as handle:
        return _inspect_open_file(handle, file_path, shown)


def _not_regular(mode: int) -> str | None:
    """Why a file of this mode cannot be a model file, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "this is a folder, not a model file"
    if stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a special file"
    return f"this is {kind}, not a regular file: only regular .gguf files can be models"


def _inspect_open_file(handle: Any, file_path: Path, shown: str) -> GGUFInfo:
    """The checks of `inspect_gguf` on the opened file."""
    try:
        status = os.fstat(handle.fileno())
        problem = _not_regular(status.st_mode)
        if problem:
            raise ModelFileError(shown, problem)
        size = status.st_size
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
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            metadata, entries, data_start = _HeaderParser(data, size).parse(tensor_count, kv_count)
    except _OutOfData:
        raise ModelFileError(
            shown, f"truncated: the header goes beyond the end of the file ({size:,} bytes); "
            "the download was probably interrupted",
        ) from None
    except (ValueError, LookupError, OSError, struct.error) as exc:  # struct.error: the file shrank
        raise ModelFileError(shown, f"corrupt GGUF header: {exc}") from exc
    needed = max((e.data_offset + e.n_bytes for e in entries), default=data_start)
    if needed > size:
        percent = 100 * size / needed
        raise ModelFileError(
            shown,
            f"truncated: the file has {size:,} bytes but its tensors need {needed:,} "
            f"({percent:.0f}% present); the download was probably interrupted",
        )
    if not entries:
        raise ModelFileError(shown, "the file holds no tensors (weights): it is not a usable model")

    arch = metadata.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelFileError(shown, "the header has no general.architecture: not a usable model")

    def arch_int(key: str) -> int | None:
        value = _scalar(metadata, f"{arch}.{key}")
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def text(key: str) -> str | None:
        value = metadata.get(key)
        return value if isinstance(value, str) and value else None

    parameter_count = sum(e.n_elements for e in entries)
    return GGUFInfo(
        path=str(file_path.resolve()),
        file_name=file_path.name,
        file_size=size,
        version=int(version),
        architecture=arch,
        name=text("general.name") or file_path.stem,
        size_label=text("general.size_label") or format_parameter_count(parameter_count),
        parameter_count=parameter_count,
        quantization=_quantization(metadata, entries),
        context_length=arch_int("context_length"),
        vocab_size=_array_length(metadata, "tokenizer.ggml.tokens") or arch_int("vocab_size"),
        chat_template=text("tokenizer.chat_template"),
        block_count=arch_int("block_count"),
        embedding_length=arch_int("embedding_length"),
        head_count=arch_int("attention.head_count"),
        head_count_kv=arch_int("attention.head_count_kv"),
        feed_forward_length=arch_int("feed_forward_length"),
        tensor_count=len(entries),
    )
