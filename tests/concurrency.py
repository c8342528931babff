"""Running one computation from several threads at once, switching between them as often as possible: what
the compiled evaluators' stress tests share."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any


def wrong_answers(answers: Callable[[int], Any], threads: int = 4, rounds: int = 300) -> list[tuple[int, Any]]:
    """Each thread i computes answers(i) `rounds` times, all threads at once; the answers that differ from
    answers(i) computed alone first, as (i, answer)."""
    expected = {i: answers(i) for i in range(threads)}
    wrong: list[tuple[int, Any]] = []

    def work(i: int) -> None:
        for _ in range(rounds):
            got = answers(i)
            if got != expected[i]:
                wrong.append((i, got))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        running = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in running:
            t.start()
        for t in running:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    return wrong
