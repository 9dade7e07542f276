"""Turns on the one model: first come, first served, and a waiter that gives up leaves the line."""

from __future__ import annotations

import threading
import time

from app.api.turns import API_HOLDER, TurnCancelled, TurnQueue


def test_waiters_get_their_turn_in_the_order_they_asked() -> None:
    queue = TurnQueue()
    order: list[int] = []
    queue.acquire("first")
    started: list[threading.Thread] = []
    for number in range(5):
        def wait(number: int = number) -> None:
            with queue.turn(f"waiter {number}"):
                order.append(number)
        thread = threading.Thread(target=wait)
        thread.start()
        started.append(thread)
        while len(queue._waiting) < number + 1:  # each one is in line before the next asks
            time.sleep(0.001)
    assert queue.locked() and queue.holder == "first"
    queue.release()
    for thread in started:
        thread.join(10)
    assert order == [0, 1, 2, 3, 4]
    assert not queue.locked() and queue.holder == ""


def test_a_waiter_that_gives_up_leaves_the_line_and_the_next_one_goes() -> None:
    queue = TurnQueue()
    queue.acquire(API_HOLDER)
    gave_up = threading.Event()
    outcome: dict[str, object] = {}

    def impatient() -> None:
        try:
            queue.acquire("impatient", cancelled=gave_up.is_set)
            outcome["impatient"] = "got it"
        except TurnCancelled as exc:
            outcome["impatient"] = str(exc)

    def patient() -> None:
        with queue.turn("patient"):
            outcome["patient"] = queue.holder

    first = threading.Thread(target=impatient)
    first.start()
    while not queue._waiting:
        time.sleep(0.001)
    second = threading.Thread(target=patient)
    second.start()
    while len(queue._waiting) < 2:
        time.sleep(0.001)
    gave_up.set()
    first.join(10)
    assert outcome["impatient"] == "the request was cancelled while it waited for the model"
    queue.release()
    second.join(10)
    assert outcome["patient"] == "patient"
    with queue.turn("again"):
        assert queue.holder == "again"


def test_acquire_with_a_timeout_answers_like_a_lock() -> None:
    queue = TurnQueue()
    assert queue.acquire(timeout=0.05) is True
    assert queue.acquire(timeout=0.05) is False  # held: gives up, and leaves the line
    queue.release()
    assert queue.acquire(timeout=0.05) is True
    queue.release()
