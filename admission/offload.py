"""Run policy evaluation beside the event loop, under a deadline, at a small per-request cost.

`Offload.run(fn, deadline, size, key)` returns fn()'s result or raises TimeoutError once the deadline (a
time.monotonic() value) has passed; the caller then answers fail closed. Two ways to run fn:

- **A dedicated evaluation thread** per worker process, fed through a queue and answering through
  `call_soon_threadsafe`: about 20 µs a hand-off against about 60 µs for `asyncio.to_thread` under
  `asyncio.wait_for` (measured on the development machine). The deadline is a timer on the event loop, so it
  answers on time whatever the thread does. An evaluation still running at its deadline cannot be stopped (no
  thread can); its thread is set aside and a fresh one takes the queue, so one stuck evaluation does not hold
  up the requests behind it. At most `max_stuck` threads are set aside at once: past that, requests wait in
  the queue and their deadlines deny them. Evaluators end soon after a deadline anyway: they check it
  between rules and per element of their loops (`Context.check`), so a set-aside thread is normally free
  again shortly after its deadline (`busy()`).
- **Inline on the event loop**, when the running estimate for this `key` (policy set and endpoint) predicts
  an evaluation of this `size` under `inline_budget` (2 ms): how long the loop may be held. Evaluating in
  the thread is not free even when the hand-off is: the thread and the event loop take turns on the GIL, and
  the loop then waits up to the interpreter's switch interval (5 ms) to answer. Measured with
  bench/http_bench.py on the built-in library (~0.6 ms per review): p99 at 1,000 req/s 6.4-11 ms in the
  thread, 4.2-4.4 ms inline. Slower policy sets (Rego, large objects) keep going to the thread, so /healthz
  and other requests stay responsive. The estimate is in seconds per body byte, rises at once on a slow
  evaluation and falls slowly, and needs `warmup` samples first. An inline evaluation is bounded by the
  evaluators' own cooperative deadline checks between rules; past the deadline it is a TimeoutError like
  the threaded one.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MIN_SIZE = 512  # bytes: a floor, so that tiny bodies do not predict a free evaluation


@dataclass
class Estimate:
    """Seconds of evaluation per body byte: jumps up to a slower sample at once, decays by `decay` per sample."""

    per_byte: float = 0.0
    samples: int = 0
    decay: float = 0.1

    def add(self, seconds: float, size: int) -> None:
        sample = seconds / max(size, MIN_SIZE)
        if self.samples == 0 or sample >= self.per_byte:
            self.per_byte = sample
        else:
            self.per_byte += (sample - self.per_byte) * self.decay
        self.samples += 1

    def predict(self, size: int) -> float:
        return self.per_byte * max(size, MIN_SIZE)


@dataclass
class _Job(Generic[T]):
    fn: Callable[[], T]
    future: asyncio.Future[tuple[T, float]]
    loop: asyncio.AbstractEventLoop
    deadline: float


@dataclass
class _Worker:
    jobs: queue.SimpleQueue[_Job[Any] | None] = field(default_factory=queue.SimpleQueue)
    current: _Job[Any] | None = None
    stuck: bool = False
    thread: threading.Thread | None = None


class Offload:
    def __init__(self, *, inline_budget: float = 2e-3, warmup: int = 16, max_stuck: int = 4) -> None:
        self.inline_budget = inline_budget
        self.warmup = warmup
        self.max_stuck = max_stuck
        self.estimates: dict[Any, Estimate] = {}
        self.inline_runs = 0
        self.thread_runs = 0
        self.threads_started = 0
        self._worker: _Worker | None = None
        self._stuck: list[_Worker] = []

    def inline_ok(self, key: Any, size: int) -> bool:
        est = self.estimates.get(key)
        return est is not None and est.samples >= self.warmup and est.predict(size) < self.inline_budget

    async def run(self, fn: Callable[[], T], deadline: float, *, size: int = 0, key: Any = None) -> T:
        if self.inline_ok(key, size):
            self.inline_runs += 1
            start = time.perf_counter()
            result = fn()
            self._record(key, time.perf_counter() - start, size)
            if time.monotonic() > deadline:
                raise TimeoutError
            return result
        self.thread_runs += 1
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(fn, loop.create_future(), loop, deadline)
        self._submit(job)
        timer = loop.call_later(max(0.0, deadline - time.monotonic()), self._expire, job)
        try:
            result, seconds = await job.future
        finally:
            timer.cancel()
        self._record(key, seconds, size)
        if time.monotonic() > deadline:  # it ended at its deadline (Context.check): answered as the timer would
            raise TimeoutError
        return result

    def busy(self) -> int:
        """How many evaluation threads are running a job now, set-aside ones included. Evaluations check their
        Context's deadline between rules and per element (Context.check), so a thread set aside at a deadline
        is normally free again soon after, not when the whole evaluation would have ended."""
        workers = [self._worker, *self._stuck]
        return sum(1 for w in workers if w is not None and w.current is not None)

    def close(self) -> None:
        """Let the evaluation threads end once their current job is done."""
        for worker in [self._worker, *self._stuck]:
            if worker is not None:
                worker.jobs.put(None)
        self._worker = None
        self._stuck = []

    def _record(self, key: Any, seconds: float, size: int) -> None:
        est = self.estimates.get(key)
        if est is None:
            if len(self.estimates) > 64:  # keys change with reloads: keep the latest few
                self.estimates.clear()
            est = self.estimates[key] = Estimate()
        est.add(seconds, size)

    def _submit(self, job: _Job[Any]) -> None:
        worker = self._worker
        if worker is None:
            worker = self._worker = self._start()
        worker.jobs.put(job)

    def _start(self) -> _Worker:
        worker = _Worker()
        self.threads_started += 1
        worker.thread = threading.Thread(target=self._work, args=(worker,), name="admission-evaluate", daemon=True)
        worker.thread.start()
        return worker

    def _expire(self, job: _Job[Any]) -> None:
        """On the loop, at a deadline: answer TimeoutError; if the thread is busy past a deadline, set it aside."""
        if not job.future.done():
            job.future.set_exception(TimeoutError())
        worker = self._worker
        running = worker.current if worker is not None else None
        if worker is not None and running is not None and (running is job or time.monotonic() >= running.deadline):
            self._stuck = [w for w in self._stuck if w.thread is not None and w.thread.is_alive()]
            if len(self._stuck) < self.max_stuck:
                worker.stuck = True
                self._stuck.append(worker)
                self._worker = self._start()

    def _work(self, worker: _Worker) -> None:
        while True:
            job = worker.jobs.get()
            if job is None:
                return
            if job.future.done():  # its deadline passed while it waited
                continue
            worker.current = job
            start = time.perf_counter()
            try:
                outcome: tuple[Any, BaseException | None] = (job.fn(), None)
            except BaseException as exc:  # handed to the awaiting request, never lost in this thread
                outcome = (None, exc)
            seconds = time.perf_counter() - start
            worker.current = None
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                job.loop.call_soon_threadsafe(_settle, job.future, outcome, seconds)
            if worker.stuck:
                self._hand_over(worker)
                return

    def _hand_over(self, worker: _Worker) -> None:
        """A set-aside thread, done with its stuck job, passes what waited behind it to the current thread."""
        while True:
            try:
                job = worker.jobs.get_nowait()
            except queue.Empty:
                return
            if job is None:
                return
            if not job.future.done():
                job.loop.call_soon_threadsafe(self._submit, job)


def _settle(future: asyncio.Future[tuple[Any, float]], outcome: tuple[Any, BaseException | None],
            seconds: float) -> None:
    if future.done():
        return
    result, error = outcome
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result((result, seconds))
