"""The kernel-side output cap (kernel_boot.OutputCap) on its own: head, tail, and the note."""

from __future__ import annotations

from app.execution.kernel_boot import OutputCap


class Sink:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)


def test_short_output_passes_untouched() -> None:
    sink = Sink()
    cap = OutputCap(sink, head=10, tail=5)
    cap.write("hello")
    cap.finish()
    assert "".join(sink.parts) == "hello"


def test_long_output_keeps_head_and_tail_and_says_how_much_was_cut() -> None:
    sink = Sink()
    cap = OutputCap(sink, head=10, tail=5)
    for chunk in ("0123456789", "abcdefghij", "KLMNO", "vwxyz"):
        cap.write(chunk)
    cap.finish()
    text = "".join(sink.parts)
    assert text.startswith("0123456789\n[… 15 characters not shown")
    assert text.endswith("vwxyz")


def test_one_huge_write_costs_only_its_tail() -> None:
    sink = Sink()
    cap = OutputCap(sink, head=4, tail=3)
    cap.write("x" * 1000 + "END")
    cap.finish()
    assert sink.parts[0] == "xxxx" and sink.parts[-1] == "END"
    assert "996 characters not shown" in sink.parts[1]


def test_each_run_starts_with_a_fresh_budget() -> None:
    sink = Sink()
    cap = OutputCap(sink, head=3, tail=2)
    cap.write("abcdef")
    cap.finish()
    sink.parts.clear()
    cap.write("xyz")
    cap.finish()
    assert "".join(sink.parts) == "xyz"
