"""Modules loaded on first use: ranks that never talk to iRODS never import python-irodsclient."""

from __future__ import annotations

import subprocess
import sys

from hpcingest.lazy import lazy_module


def test_the_ingest_job_imports_without_python_irodsclient_or_numpy():
    code = ("import sys, hpcingest.cli, hpcingest.ingest.job; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('irods', 'numpy')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_lazy_module_loads_on_first_attribute_and_is_the_real_module():
    code = ("import sys; from hpcingest.lazy import lazy_module; "
            "ops = lazy_module('hpcingest.irods.operations'); before = 'irods' in sys.modules; "
            "f = ops.register_pipelined; "
            "import hpcingest.irods.operations as real; "
            "print(before, 'irods' in sys.modules, f is real.register_pipelined)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True", "True"]
    assert lazy_module("json") is sys.modules["json"]
