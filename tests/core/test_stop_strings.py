"""Stop strings found across piece boundaries, never shown half-way."""

import random

from app.core.stop_strings import StopStringScanner


def feed_all(scanner: StopStringScanner, pieces: list[str]) -> str:
    return "".join(scanner.feed(p) for p in pieces) + scanner.flush()


def test_stop_string_straddling_pieces_is_cut_before_it() -> None:
    scanner = StopStringScanner(["STOP"])
    assert feed_all(scanner, ["Hello ST", "O", "P and more"]) == "Hello "
    assert scanner.stopped


def test_partial_match_is_held_then_released() -> None:
    scanner = StopStringScanner(["STOP"])
    assert scanner.feed("a ST") == "a "
    assert scanner.feed("ART") == "START"
    assert not scanner.stopped


def test_held_text_is_flushed_at_the_end() -> None:
    scanner = StopStringScanner(["\n\n"])
    assert scanner.feed("line\n") == "line"
    assert scanner.flush() == "\n"


def test_earliest_of_several_stops_wins() -> None:
    scanner = StopStringScanner(["world", "lo"])
    assert feed_all(scanner, ["hello world"]) == "hel"


def test_no_stops_passes_everything() -> None:
    scanner = StopStringScanner([])
    assert feed_all(scanner, ["a", "b"]) == "ab"


class StraightforwardScanner:
    """The obvious check (every stop string against all the text not yet released): the reference
    the scanner must agree with, piece by piece."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        text = self.held + piece
        found = [pos for pos in (text.find(s) for s in self.stops) if pos >= 0]
        if found:
            self.stopped, self.held = True, ""
            return text[: min(found)]
        keep = 0  # the longest end of the text that begins some stop string
        for stop in self.stops:
            for length in range(min(len(stop) - 1, len(text)), keep, -1):
                if text.endswith(stop[:length]):
                    keep = length
                    break
        self.held = text[len(text) - keep :]
        return text[: len(text) - keep]

    def flush(self) -> str:
        held, self.held = self.held, ""
        return "" if self.stopped else held


def pieces_of(text: str, rng: random.Random) -> list[str]:
    out, start = [], 0
    while start < len(text):
        size = rng.randint(0, 6)  # empty pieces too: a token can decode to nothing yet
        out.append(text[start : start + size])
        start += size
    return out


def outputs(scanner: StopStringScanner | StraightforwardScanner, pieces: list[str]) -> tuple[list[str], bool]:
    shown = [scanner.feed(piece) for piece in pieces] + [scanner.flush()]
    return shown, scanner.stopped


def test_ten_thousand_stop_strings_give_exactly_the_straightforward_output() -> None:
    rng = random.Random(12)
    # A short alphabet: partial matches, overlaps and stop strings inside others are everywhere.
    stops = sorted({"".join(rng.choice("abcdef") for _ in range(rng.randint(5, 10))) for _ in range(12_000)})
    stops = rng.sample(stops, 10_000)
    texts = ["".join(rng.choice("abcdefx") for _ in range(rng.randint(0, 200))) for _ in range(40)]
    texts += ["x" * 50 + stops[0][:-1], stops[1] * 3, ""]
    stopped_somewhere = 0
    for text in texts:
        pieces = pieces_of(text, rng)
        expected = outputs(StraightforwardScanner(stops), pieces)
        assert outputs(StopStringScanner(stops), pieces) == expected, (text, pieces)
        stopped_somewhere += expected[1]
    assert 0 < stopped_somewhere < len(texts)  # both outcomes were compared


def test_few_stop_strings_agree_with_the_straightforward_check() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        alphabet = rng.choice(["ab", "abc", "abcd"])
        stops = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(0, 5))]
        pieces = pieces_of("".join(rng.choice(alphabet + "x") for _ in range(rng.randint(0, 40))), rng)
        assert outputs(StopStringScanner(stops), pieces) == outputs(StraightforwardScanner(stops), pieces), (
            stops, pieces)


def test_the_earliest_starting_stop_wins_even_when_it_ends_later() -> None:
    scanner = StopStringScanner(["abcdef", "cd"])
    assert feed_all(scanner, ["xxab", "cdef tail"]) == "xx"


class CountingStr(str):
    """A stop string that counts how often the scanner looks at it (its length or a slice)."""

    looks = 0

    def __len__(self) -> int:
        CountingStr.looks += 1
        return super().__len__()

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        CountingStr.looks += 1
        return super().__getitem__(key)


def test_feeding_text_does_not_go_through_the_stop_strings() -> None:
    """The work per token must not grow with the number of stop strings: once the scanner is
    built, feeding never looks at them one by one (10,000 of them made generation 34x slower)."""
    stops = [CountingStr(f"<stop {n}>") for n in range(10_000)]
    scanner = StopStringScanner(stops)
    CountingStr.looks = 0
    shown = [scanner.feed(piece) for piece in ["Some <st", "op", " 12", " tex", "t <stop 99", "9>", " after"]]
    assert CountingStr.looks == 0
    assert shown == ["Some ", "", "", "<stop 12 tex", "t ", "", ""] and scanner.stopped
