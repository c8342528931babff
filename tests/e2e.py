"""Where end-to-end tests find their API server: ADMISSION_E2E_KUBECONFIG names the kubeconfig of a disposable
kube-apiserver (../shared/apiserver/up.sh starts one on loopback); without it the tests skip, saying why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

E2E_ENV = "ADMISSION_E2E_KUBECONFIG"


def e2e_kubeconfig() -> str:
    """The kubeconfig's path; skips the calling test (or fixture) when there is none."""
    path = os.environ.get(E2E_ENV, "")
    if not path:
        pytest.skip(f"{E2E_ENV} is not set: no API server to run end-to-end tests against "
                    "(../shared/apiserver/up.sh starts one and prints its kubeconfig)")
    if not Path(path).is_file():
        pytest.skip(f"{E2E_ENV}={path} does not exist (is the API server up?)")
    return path
