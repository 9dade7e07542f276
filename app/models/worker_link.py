"""The link between the studio and its model worker: framed messages over the worker's stdin and
stdout, and a stop flag both processes map into memory.

Both ends are the studio's own code, so messages are pickled plain data. The stop flag is a
one-byte memory-mapped file: the worker reads it between tokens while it is busy generating, when
it is not reading its input.
"""

from __future__ import annotations

import mmap
import os
import pickle
import struct
from typing import IO, Any

_HEADER = struct.Struct("<I")
_STEPS = struct.Struct("<Q")


class FramedPipe:
    """Length-prefixed pickled messages over a pair of binary streams."""

    def __init__(self, reader: IO[bytes], writer: IO[bytes]) -> None:
        self._reader = reader
        self._writer = writer

    def send(self, message: Any) -> None:
        """Write one message; raises BrokenPipeError/OSError when the other side is gone."""
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_HEADER.pack(len(data)) + data)
        self._writer.flush()

    def recv(self) -> Any:
        """Read one message; raises EOFError when the other side has closed."""
        header = self._read_exactly(_HEADER.size)
        return pickle.loads(self._read_exactly(_HEADER.unpack(header)[0]))

    def _read_exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self._reader.read(size)
            if not chunk:
                raise EOFError("the other end of the pipe closed")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for stream in (self._writer, self._reader):
            try:
                stream.close()
            except OSError:
                pass


class StopFlag:
    """A stop flag and a step counter shared between processes through a small memory-mapped file.

    Byte 0 is the stop flag. Bytes 8-15 count the steps the studio has granted ("Next token"):
    only the studio writes them, only ever upwards, and the worker keeps its own count of steps
    used, so no read-modify-write ever crosses the two processes."""

    SIZE = 16

    def __init__(self, path: str | os.PathLike[str], create: bool = False) -> None:
        self.path = os.fspath(path)
        if create:
            with open(self.path, "wb") as handle:
                handle.write(b"\0" * self.SIZE)
        self._file = open(self.path, "r+b")
        self._map = mmap.mmap(self._file.fileno(), self.SIZE)

    def set(self) -> None:
        self._map[0] = 1

    def clear(self) -> None:
        self._map[0] = 0

    def is_set(self) -> bool:
        return self._map[0] != 0

    def grant_step(self) -> None:
        """Allow one more token (studio side)."""
        self._map[8:16] = _STEPS.pack(self.steps_granted() + 1)

    def steps_granted(self) -> int:
        return _STEPS.unpack(self._map[8:16])[0]

    def close(self, remove: bool = False) -> None:
        self._map.close()
        self._file.close()
        if remove:
            try:
                os.remove(self.path)
            except OSError:
                pass
