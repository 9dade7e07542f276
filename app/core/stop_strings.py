"""Streaming detection of stop strings.

Text arrives in pieces; a stop string may straddle two pieces. The scanner releases text only when
it can no longer be the start of a stop string, so the person never sees half a stop string that is
later taken back.

The stop strings are compiled into one Aho-Corasick automaton, so each new character costs about the
same with one stop string or ten thousand (checking every stop string against every piece made a
generation with 10,000 stop strings 34 times slower).
"""

from __future__ import annotations

from functools import lru_cache

_MAX_LEARNED_MOVES = 200_000  # bounds the memory the move cache may add to an automaton


class _Automaton:
    """Aho-Corasick over the stop strings. Node 0 is the empty string; every node is a prefix of
    some stop string. `goto` starts as the trie; moves that follow failure links are added to it as
    they are first needed, so a character usually costs one dictionary look-up."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.learned = 0
        self.goto: list[dict[str, int]] = [{}]
        self.fail: list[int] = [0]
        self.depth: list[int] = [0]
        # Length of the longest stop string that ends at this node (a suffix of its prefix); 0 = none.
        self.match: list[int] = [0]
        for stop in stops:
            node = 0
            for char in stop:
                following = self.goto[node].get(char)
                if following is None:
                    following = len(self.goto)
                    self.goto[node][char] = following
                    self.goto.append({})
                    self.fail.append(0)
                    self.depth.append(self.depth[node] + 1)
                    self.match.append(0)
                node = following
            self.match[node] = len(stop)
        queue = list(self.goto[0].values())  # breadth first: a node's fail link is settled before it
        for node in queue:
            for char, child in self.goto[node].items():
                target = self.fail[node]
                while char not in self.goto[target] and target:
                    target = self.fail[target]
                link = self.goto[target].get(char, 0)
                self.fail[child] = link if link != child else 0
                self.match[child] = max(self.match[child], self.match[self.fail[child]])
                queue.append(child)
        self.longest = max((len(stop) for stop in stops), default=0)

    def move(self, state: int, char: str) -> int:
        """The node after `char` from `state` when the trie has no such edge: the failure links are
        followed, and the answer is remembered for every node passed."""
        passed = []
        while state and char not in self.goto[state]:
            passed.append(state)
            state = self.fail[state]
        target = self.goto[state].get(char, 0)
        if self.learned < _MAX_LEARNED_MOVES:
            if not state:
                passed.append(0)
            for node in passed:
                self.goto[node][char] = target
            self.learned += len(passed)
        return target


@lru_cache(maxsize=8)
def _automaton(stops: tuple[str, ...]) -> _Automaton:
    # Cached: every generation of a chain usually has the same stop strings.
    return _Automaton(stops)


class StopStringScanner:
    """Feed text pieces; get back the text that is safe to show and whether a stop string was hit."""

    def __init__(self, stops: tuple[str, ...] | list[str]) -> None:
        self._stops = tuple(dict.fromkeys(s for s in stops if s))
        self._automaton = _automaton(self._stops) if self._stops else None
        self._state = 0  # the automaton's node for the held-back text
        self._held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Add `piece`; return text safe to emit. After a stop string, everything else is dropped."""
        if self.stopped:
            return ""
        automaton = self._automaton
        if automaton is None:
            return piece
        # The held-back text is the automaton's current node: only the new characters are scanned.
        goto, match, move = automaton.goto, automaton.match, automaton.move
        state = self._state
        for char in piece:
            following = goto[state].get(char)
            state = move(state, char) if following is None else following
            if match[state]:
                return self._cut(piece)
        # The node is the longest suffix that is a prefix of a stop string (a proper one: a whole
        # stop string would have matched): exactly what must be held back.
        keep, held = automaton.depth[state], self._held
        self._state = state
        if keep <= len(piece):
            released = len(piece) - keep
            self._held = piece[released:]
            return held + piece[:released]
        released = len(held) + len(piece) - keep
        self._held = held[released:] + piece
        return held[:released]

    def _cut(self, piece: str) -> str:
        """`piece` completes a stop string: the text before the earliest-starting one is released."""
        automaton = self._automaton
        assert automaton is not None
        text = self._held + piece
        state, cut, last = self._state, len(text), len(text)
        for index in range(len(self._held), len(text)):
            if index >= last:
                break
            char = text[index]
            following = automaton.goto[state].get(char)
            state = automaton.move(state, char) if following is None else following
            length = automaton.match[state]
            if length and index - length + 1 < cut:
                cut = index - length + 1
                # A stop string starting earlier still would have ended by this index.
                last = min(len(text), cut + automaton.longest - 1)
        self.stopped = True
        self._held = ""
        self._state = 0
        return text[:cut]

    def flush(self) -> str:
        """Release held-back text at the end of generation (it turned out not to be a stop string)."""
        held, self._held, self._state = self._held, "", 0
        return "" if self.stopped else held
