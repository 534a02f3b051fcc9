"""External check: python-irodsclient's own test modules, run unmodified against a fresh zone.

The test ids that must pass are listed in prc_suite.txt (one per line, '#' comments).  PRC's
tests expect a rodsadmin ``rods`` in ``tempZone`` and an environment whose ``irods_host`` is
``localhost``; they leave users and objects behind, hence a zone of their own.  Against a real
zone (IRODS_ENVIRONMENT_FILE set) the same list runs against that zone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hpcingest.zone.testing import zone_from_environment_or_start

SUITE_FILE = Path(__file__).with_name("prc_suite.txt")

# Runs inside the child: load the named tests, run them in order, write {test id: outcome} as JSON.
_RUNNER = """
import json, sys, unittest
names, out = sys.argv[2:], sys.argv[1]
result = unittest.TestResult()
unittest.defaultTestLoader.loadTestsFromNames(names).run(result)
outcome = {name: "ok" for name in names}
for kind, entries in (("FAIL", result.failures), ("ERROR", result.errors), ("skipped", result.skipped)):
    for test, detail in entries:
        for name in names:
            if name == test.id() or name.startswith(getattr(test, "description", "~").split("(")[-1].rstrip(")")):
                outcome[name] = kind + ": " + str(detail)[-300:]
json.dump(outcome, open(out, "w"))
"""


def listed_tests() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in SUITE_FILE.read_text().splitlines())
    return [line for line in lines if line]


# Fixed scratch directories some PRC tests create and remove again; a crashed earlier run can
# leave one behind, and the test then fails on os.mkdir.
_PRC_SCRATCH = ("/tmp/register_test_dir", "/tmp/register_test_dir_with_chksums")


def test_prc_suite_cases_pass(tmp_path):
    tests = listed_tests()
    for scratch in _PRC_SCRATCH:
        shutil.rmtree(scratch, ignore_errors=True)
    outcome_file = tmp_path / "outcome.json"
    with zone_from_environment_or_start(tmp_path) as zone:
        env = dict(os.environ, **zone.environ())
        env.pop("PYTHON_IRODSCLIENT_REPORTED_SERVER_VERSION", None)
        env.pop("IRODS_SERVER_VERSION", None)
        run = subprocess.run([sys.executable, "-W", "ignore", "-c", _RUNNER, str(outcome_file), *tests],
                             cwd=tmp_path, env=env, capture_output=True, text=True)
    assert outcome_file.exists(), run.stderr[-3000:]
    outcome = json.loads(outcome_file.read_text())
    not_passed = {test: outcome.get(test, "not run") for test in tests if outcome.get(test) != "ok"}
    assert not not_passed, f"{len(not_passed)} listed PRC tests did not pass: {not_passed}"
