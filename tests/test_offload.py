"""Evaluation beside the event loop: results, errors, deadlines, stuck threads, and the inline estimate."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from admission.offload import Estimate, Offload


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_runs_in_the_evaluation_thread_and_returns_the_result() -> None:
    off = Offload()

    async def scenario() -> tuple[str, str]:
        return await off.run(lambda: threading.current_thread().name, time.monotonic() + 5), \
            threading.current_thread().name

    try:
        inside, loop_thread = run(scenario())
    finally:
        off.close()
    assert inside == "admission-evaluate" and loop_thread != inside
    assert (off.thread_runs, off.inline_runs) == (1, 0)


def test_an_exception_reaches_the_caller() -> None:
    off = Offload()

    def boom() -> None:
        raise ValueError("bad rule")

    async def scenario() -> None:
        await off.run(boom, time.monotonic() + 5)

    try:
        with pytest.raises(ValueError, match="bad rule"):
            run(scenario())
    finally:
        off.close()


def test_the_deadline_answers_while_the_loop_stays_free() -> None:
    off = Offload()

    async def scenario() -> tuple[float, float]:
        start = time.monotonic()
        slow = asyncio.create_task(off.run(lambda: time.sleep(1.0), start + 0.2))
        await asyncio.sleep(0.05)
        loop_free_at = time.monotonic() - start  # the loop ran this while the evaluation slept
        with pytest.raises(TimeoutError):
            await slow
        return loop_free_at, time.monotonic() - start

    try:
        loop_free_at, answered_at = run(scenario())
    finally:
        off.close()
    assert loop_free_at < 0.15
    assert 0.19 <= answered_at < 0.6


def test_a_stuck_evaluation_does_not_hold_up_the_next_requests() -> None:
    off = Offload()

    async def scenario() -> tuple[str, float]:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await off.run(lambda: time.sleep(1.5), start + 0.1)
        after = time.monotonic()
        result = await off.run(lambda: "next", after + 1.0)  # a fresh thread takes it at once
        return result, time.monotonic() - after

    try:
        result, waited = run(scenario())
    finally:
        off.close()
    assert result == "next" and waited < 0.5


def test_no_more_than_max_stuck_threads_are_set_aside() -> None:
    off = Offload(max_stuck=1)

    async def scenario() -> list[bool]:
        outcomes = []
        for _ in range(3):  # the first stuck thread is set aside; the second is not replaced
            try:
                await off.run(lambda: time.sleep(0.6), time.monotonic() + 0.05)
                outcomes.append(True)
            except TimeoutError:
                outcomes.append(False)
        return outcomes

    try:
        outcomes = run(scenario())
    finally:
        off.close()
    assert outcomes == [False, False, False]  # every deadline still answers: fail closed, never a hang
    assert off.threads_started == 2


def test_cheap_evaluations_run_inline_after_the_warmup_and_slow_ones_go_back_to_the_thread() -> None:
    off = Offload(inline_budget=0.002, warmup=4)
    threads: list[str] = []

    def cheap() -> None:
        threads.append(threading.current_thread().name)

    async def scenario() -> None:
        for _ in range(8):
            await off.run(cheap, time.monotonic() + 5, size=5000, key="k")
        await off.run(lambda: time.sleep(0.01), time.monotonic() + 5, size=5000, key="k")  # inline, but slow
        await off.run(cheap, time.monotonic() + 5, size=5000, key="k")  # back in the thread at once

    try:
        run(scenario())
    finally:
        off.close()
    assert threads[:4] == ["admission-evaluate"] * 4  # learning
    assert threads[4:8] == [threading.main_thread().name] * 4  # measured cheap: inline
    assert threads[8] == "admission-evaluate"
    assert not off.inline_ok("k", 5000) and not off.inline_ok("other-key", 5000)


def test_an_inline_evaluation_past_the_deadline_is_a_timeout() -> None:
    off = Offload(inline_budget=1.0, warmup=1)

    async def scenario() -> None:
        await off.run(lambda: None, time.monotonic() + 5, key="k")
        assert off.inline_ok("k", 0)
        await off.run(lambda: time.sleep(0.05), time.monotonic() + 0.01, key="k")

    try:
        with pytest.raises(TimeoutError):
            run(scenario())
    finally:
        off.close()


def test_estimate_rises_at_once_and_falls_slowly() -> None:
    est = Estimate()
    est.add(0.001, 1000)
    est.add(0.010, 1000)
    assert est.predict(1000) == pytest.approx(0.010)
    est.add(0.001, 1000)
    assert 0.009 < est.predict(1000) < 0.010
    assert est.predict(2000) == pytest.approx(2 * est.predict(1000))
    assert est.predict(10) == est.predict(512)  # a floor for tiny bodies


# --- cooperative deadlines: an evaluation past its deadline frees its thread ---------------------------------

FOREACH_POLICY = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: per-container}
spec:
  validationFailureAction: Enforce
  rules:
  - name: each-image
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "image {{ element.image }} is not allowed"
      foreach:
      - list: request.object.spec.containers
        deny:
          conditions:
            any:
            - {key: "{{ element.image }}", operator: Equals, value: "forbidden"}
            - {key: "{{ element.name }}", operator: Equals, value: "{{ element.image }}"}
"""


def test_an_evaluation_past_its_deadline_stops_and_frees_its_thread() -> None:
    from admission.engine import Engine
    from admission.engines import Context
    from admission.engines.yaml import KyvernoEvaluator
    from admission.manifests import load_text
    from admission.results import Status
    from admission.review import Request

    engine = Engine([KyvernoEvaluator.from_documents(load_text(FOREACH_POLICY, "p.yaml"))])
    containers = [{"name": f"c{i}", "image": f"registry.example.com/app:{i}"} for i in range(200_000)]
    request = Request.for_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big"},
                                  "spec": {"containers": containers}})
    off = Offload()
    decisions: list[Any] = []

    async def scenario() -> None:
        deadline = time.monotonic() + 0.05
        ctx = Context(deadline=deadline)
        with pytest.raises(TimeoutError):
            await off.run(lambda: decisions.append(engine.validate(request, ctx)), deadline)
        while off.busy():  # the evaluation notices its deadline at the next element and ends
            await asyncio.sleep(0.01)

    try:
        run(scenario())
    finally:
        off.close()
    assert off.busy() == 0
    [decision] = decisions  # it ended by itself (not all 200,000 elements: its rule's result says why)
    [result] = decision.results
    assert result.status == Status.ERROR and "DeadlineExceeded" in result.message
    assert decision.allowed is False  # the rule's failurePolicy (Fail) decides


def test_context_check_raises_only_past_the_deadline() -> None:
    from admission.engines import Context, DeadlineExceeded

    Context().check()
    Context(deadline=time.monotonic() + 60).check()
    with pytest.raises(DeadlineExceeded):
        Context(deadline=time.monotonic() - 1).check()


MUTATE_FOREACH_POLICY = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: pull-always}
spec:
  rules:
  - name: each
    match: {any: [{resources: {kinds: [Pod]}}]}
    mutate:
      foreach:
      - list: request.object.spec.containers
        patchStrategicMerge:
          spec:
            containers:
            - name: "{{ element.name }}"
              imagePullPolicy: Always
"""


def test_foreach_loops_check_the_deadline_per_element() -> None:
    """The deadline passes after the rule started: the next element's check ends the rule with an error result
    (its failurePolicy decides), in validate and in mutate foreach loops alike."""
    from admission.engine import Engine
    from admission.engines import Context, DeadlineExceeded
    from admission.engines.yaml import KyvernoEvaluator
    from admission.manifests import load_text
    from admission.results import Status
    from admission.review import Request

    class ExpiresAfter(Context):
        """A deadline that passes after `checks` element checks (the rule itself starts in time)."""

        def __init__(self, checks: int) -> None:
            super().__init__(deadline=time.monotonic() + 3600)
            self.left = checks

        def check(self) -> None:
            self.left -= 1
            if self.left < 0:
                raise DeadlineExceeded("deadline exceeded")

    pod_obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
               "spec": {"containers": [{"name": f"c{i}", "image": "registry.example.com/app:1"} for i in range(50)]}}
    request = Request.for_object(pod_obj)
    for policy, call in ((FOREACH_POLICY, "validate"), (MUTATE_FOREACH_POLICY, "mutate")):
        engine = Engine([KyvernoEvaluator.from_documents(load_text(policy, "p.yaml"))])
        ctx = ExpiresAfter(3)
        outcome = engine.validate(request, ctx) if call == "validate" else engine.mutate(request, ctx).decision
        [result] = outcome.results
        assert result.status == Status.ERROR and "DeadlineExceeded" in result.message, (call, result)
        assert outcome.allowed is False and ctx.left == -1  # stopped at the 4th element of 50


# --- the compiled Rego path: every enumeration checks the deadline as it starts -----------------------------

CUBIC_MODULE = """package cubic

import rego.v1

deny contains "three values add up to -1" if {
  some a in input.request.object.data.xs
  some b in input.request.object.data.xs
  some c in input.request.object.data.xs
  to_number(a) + to_number(b) + to_number(c) == -1
}
"""

CUBIC_TEMPLATE = """package k8scubic

violation[{"msg": "three values add up to -1"}] {
  a := input.review.object.data.xs[_]
  b := [x | x := input.review.object.data.xs[_]][_]
  every c in input.review.object.data.xs { to_number(a) + to_number(b) + to_number(c) != -1 }
  false
}
"""


@pytest.mark.parametrize("dialect", ["module", "gatekeeper"])
def test_a_compiled_rego_evaluation_past_its_deadline_stops_and_frees_its_thread(tmp_path: Any, dialect: str) -> None:
    """~64 million iterations (minutes of work) on a 400-element list: the evaluation stops within a pass over
    one collection of its deadline, its thread is free again, and the rule's error follows its failure
    policy (Fail: denied)."""
    from admission.engine import Engine
    from admission.engines import Context
    from admission.engines.rego import RegoEvaluator
    from admission.results import Status
    from admission.review import Request
    from tests.test_gatekeeper_engine import constraint, template

    if dialect == "module":
        (tmp_path / "cubic.rego").write_text(CUBIC_MODULE)
        ev = RegoEvaluator.from_sources([], [tmp_path / "cubic.rego"], isolate=False)
        assert ev.modules.engine == "compiled"
    else:
        ev = RegoEvaluator.from_sources([template("K8sCubic", CUBIC_TEMPLATE), constraint("cubic", "K8sCubic",
                                         match={"kinds": [{"apiGroups": [""], "kinds": ["ConfigMap"]}]})], [], isolate=False)
        assert ev.constraints.routes["k8scubic"] == "compiled"
    engine = Engine([ev])
    request = Request.for_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big", "namespace": "a"},
                                  "data": {"xs": [str(i) for i in range(400)]}})
    off = Offload()
    decisions: list[Any] = []

    async def scenario() -> None:
        deadline = time.monotonic() + 0.1
        with pytest.raises(TimeoutError):
            await off.run(lambda: decisions.append(engine.validate(request, Context(deadline=deadline))), deadline)
        ended = time.monotonic() + 10
        while off.busy() and time.monotonic() < ended:
            await asyncio.sleep(0.01)

    try:
        run(scenario())
    finally:
        off.close()
    assert off.busy() == 0
    [decision] = decisions  # it ended by itself, long before the minutes the whole evaluation takes
    [result] = [r for r in decision.results if r.status != Status.PASS]
    assert result.status == Status.ERROR and "deadline exceeded" in result.message
    assert decision.allowed is False
