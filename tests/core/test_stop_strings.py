"""Stop strings found across piece boundaries, never shown half-way."""

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
