"""Streaming detection of stop strings.

Text arrives in pieces; a stop string may straddle two pieces. The scanner releases text only when
it can no longer be the start of a stop string, so the person never sees half a stop string that is
later taken back.
"""

from __future__ import annotations


class StopStringScanner:
    """Feed text pieces; get back the text that is safe to show and whether a stop string was hit."""

    def __init__(self, stops: tuple[str, ...] | list[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Add `piece`; return text safe to emit. After a stop string, everything else is dropped."""
        if self.stopped:
            return ""
        text = self._held + piece
        cut = self._earliest_stop(text)
        if cut is not None:
            self.stopped = True
            self._held = ""
            return text[:cut]
        keep = self._longest_partial_suffix(text)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """Release held-back text at the end of generation (it turned out not to be a stop string)."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _earliest_stop(self, text: str) -> int | None:
        positions = [pos for pos in (text.find(s) for s in self._stops) if pos >= 0]
        return min(positions) if positions else None

    def _longest_partial_suffix(self, text: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of some stop string."""
        best = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:length]):
                    best = length
                    break
        return best
