from admission.decide import decide
from admission.results import Action, FailurePolicy, RuleResult, Status


def r(status, action=Action.ENFORCE, fp=FailurePolicy.FAIL, msg="m", policy="p", rule="r"):
    return RuleResult(policy, rule, status, msg, action, fp)


def test_all_pass_is_allowed_without_message():
    d = decide([r(Status.PASS), r(Status.SKIP)])
    assert d.allowed and d.message == "" and d.warnings == []


def test_enforced_failures_deny_and_each_is_named():
    d = decide([r(Status.FAIL, msg="no latest"), r(Status.FAIL, msg="no root", policy="q", rule="s")])
    assert not d.allowed
    assert d.message == "[p/r] no latest\n[q/s] no root"
    assert len(d.denials) == 2


def test_audit_and_warn_failures_become_warnings():
    d = decide([r(Status.FAIL, Action.AUDIT, msg="a"), r(Status.FAIL, Action.WARN, msg="b"), r(Status.WARN, msg="c")])
    assert d.allowed
    assert d.warnings == ["[p/r] a", "[p/r] b", "[p/r] c"]


def test_dryrun_failures_are_neither_denials_nor_warnings():
    d = decide([r(Status.FAIL, Action.DRYRUN)])
    assert d.allowed and d.warnings == []


def test_error_fails_closed_unless_ignore():
    closed = decide([r(Status.ERROR, msg="boom")])
    assert not closed.allowed
    assert closed.message == "[p/r] error evaluating policy: boom"
    open_ = decide([r(Status.ERROR, fp=FailurePolicy.IGNORE, msg="boom")])
    assert open_.allowed
    assert "boom" in open_.warnings[0] and "Ignore" in open_.warnings[0]


def test_constraint_results_are_named_by_constraint_alone():
    d = decide([RuleResult("must-have-owner", "", Status.FAIL, "missing label owner")])
    assert d.message == "[must-have-owner] missing label owner"
