import json
import os
import subprocess
import sys

from admission.patch import apply, diff
from tests.conftest import REPO

ORIGINAL = {"metadata": {"name": "a", "labels": {"x": "1", "gone": "y"}},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}}
MUTATED = {"metadata": {"name": "a", "labels": {"x": "2", "new": "z", "also": "w"}},
           "spec": {"containers": [{"name": "a", "resources": {"limits": {"memory": "1Gi"}}}, {"name": "b"}],
                    "initContainers": [{"name": "i", "resources": {}}], "priority": 5}}


def test_diff_applies_back_to_the_mutated_object():
    ops = diff(ORIGINAL, MUTATED)
    assert apply(ORIGINAL, ops) == MUTATED
    assert diff(MUTATED, MUTATED) == []


def test_operations_follow_the_documents_order():
    ops = diff(ORIGINAL, MUTATED)
    assert [op["path"] for op in ops] == [
        "/metadata/labels/gone", "/metadata/labels/new", "/metadata/labels/also", "/metadata/labels/x",
        "/spec/priority", "/spec/containers/0/resources", "/spec/initContainers/0/resources",
    ]


def test_the_same_documents_give_the_same_patch_in_every_process():
    # String hashing is randomised per process; the patch must not depend on it (workers must agree).
    script = (f"import json; from admission.patch import diff; "
              f"print(json.dumps(diff({ORIGINAL!r}, {MUTATED!r})))")
    outputs = set()
    for seed in ("1", "2", "3", "4", "5"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        outputs.add(out.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == diff(ORIGINAL, MUTATED)
