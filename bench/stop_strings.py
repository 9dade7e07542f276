"""Stop strings: time to scan a 20,000-token answer with 10,000 stop strings vs with 1, in one run.

Feeds the studio's StopStringScanner token by token, as the worker does. The text is random
English-like words cut into 1-6 character tokens; the stop strings are word pairs followed by a mark
that never appears, so they partly match all the time but never stop the answer (the worst case:
nothing is cut short). Repetitions alternate between the two sides; the reported value is the
median of the per-repetition ratios. Also reports the straightforward check (every stop string
against the unreleased text at every token: what the scanner did before) on fewer tokens, and the
time to compile 10,000 stop strings (once per set: it is cached).

The target is 2.5, not 1: each character costs one dictionary look-up either way, but 10,000 stop
strings make an automaton of about 40,000 nodes (the CPU caches miss) and almost every token ends
inside a partial match (the held-back text is sliced and joined at every token). That is about half
a microsecond more per token; the straightforward check cost thousands of times more.
Prints {"metric": "stop_strings_10000_vs_1_time_ratio", "value": many / one, "target": 2.5} last.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from _common import median, report

TARGET = 2.5
WORDS = ("the a of to and in is it that for on was with as be at by this had not are but from or have an "
         "they which one you were her all she there would their we him been has when who will more no if out "
         "so said what up its about into than them can only other new some could time these two may then do "
         "first any my now such like our over man me even most made after also did many before must through "
         "back years where much your way well down should because each just those people how too little state "
         "good very make world still own see men work long get here between both life being under never day "
         "same another know while last might us great old year off come since against go came right used take "
         "three lighthouse harbour fog gull tide keeper lamp stone storm").split()
MARK = "§"  # never in the text: no stop string ever completes


def tokens(count: int, rng: random.Random) -> list[str]:
    text = " ".join(rng.choice(WORDS) for _ in range(count))
    out, start = [], 0
    while len(out) < count:
        size = rng.randint(1, 6)
        out.append(text[start : start + size])
        start += size
    return out


def stop_strings(count: int, rng: random.Random) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        found.add(f"{rng.choice(WORDS)} {rng.choice(WORDS)}{MARK}")
    return sorted(found)


def straightforward_feed(stops: list[str], pieces: list[str]) -> None:
    """The check the scanner used to make: every stop string, at every token."""
    held = ""
    for piece in pieces:
        text = held + piece
        assert not [pos for pos in (text.find(s) for s in stops) if pos >= 0]
        keep = 0
        for stop in stops:
            for length in range(min(len(stop) - 1, len(text)), keep, -1):
                if text.endswith(stop[:length]):
                    keep = length
                    break
        held = text[len(text) - keep :]


def scan_seconds(stops: list[str], pieces: list[str]) -> float:
    from app.core.stop_strings import StopStringScanner

    scanner = StopStringScanner(stops)  # compiled once before timing (cached, as in a real chain)
    started = time.perf_counter()
    for piece in pieces:
        scanner.feed(piece)
    scanner.flush()
    elapsed = time.perf_counter() - started
    assert not scanner.stopped
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000, help="tokens in the answer")
    parser.add_argument("--stops", type=int, default=10_000, help="stop strings on the many side")
    parser.add_argument("--repeats", type=int, default=7, help="alternating repetitions per side")
    parser.add_argument("--reference-tokens", type=int, default=1_000,
                        help="tokens for the straightforward check (it is slow with many stop strings)")
    args = parser.parse_args()

    from app.core.stop_strings import StopStringScanner

    rng = random.Random(2024)
    pieces = tokens(args.tokens, rng)
    many = stop_strings(args.stops, rng)
    one = many[:1]
    started = time.perf_counter()
    StopStringScanner(many)
    compile_seconds = time.perf_counter() - started

    scan_seconds(one, pieces[:1000])  # warm up
    ratios, one_times, many_times = [], [], []
    for repeat in range(args.repeats):
        t_one = scan_seconds(one, pieces)
        t_many = scan_seconds(many, pieces)
        one_times.append(t_one)
        many_times.append(t_many)
        ratios.append(t_many / t_one)
        print(f"repeat {repeat + 1}: 1 stop string {t_one * 1000:.1f} ms, {len(many):,} stop strings "
              f"{t_many * 1000:.1f} ms, ratio {t_many / t_one:.3f}", flush=True)

    few = pieces[: args.reference_tokens]
    started = time.perf_counter()
    straightforward_feed(one, few)
    old_one = time.perf_counter() - started
    started = time.perf_counter()
    straightforward_feed(many, few)
    old_many = time.perf_counter() - started
    print(f"medians over {args.tokens:,} tokens: 1 stop string {median(one_times) * 1000:.1f} ms, "
          f"{len(many):,} stop strings {median(many_times) * 1000:.1f} ms "
          f"({median(many_times) / args.tokens * 1e6:.2f} µs per token); compiling {len(many):,} stop strings "
          f"{compile_seconds * 1000:.0f} ms")
    print(f"straightforward check over {len(few):,} tokens: 1 stop string {old_one * 1000:.1f} ms, "
          f"{len(many):,} stop strings {old_many * 1000:.0f} ms, ratio {old_many / old_one:,.0f}")
    report("stop_strings_10000_vs_1_time_ratio", median(ratios), TARGET,
           one_ms=round(median(one_times) * 1000, 2), many_ms=round(median(many_times) * 1000, 2),
           compile_ms=round(compile_seconds * 1000, 1), straightforward_ratio=round(old_many / old_one, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
