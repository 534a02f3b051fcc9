"""Old options that mean nothing to hpcingest: accepted, and named once, on every command."""

from __future__ import annotations

import subprocess

import pytest

from hpcingest.cli import build_parser
from hpcingest.compat.options import ignored_option_warnings
from tests.launchers import hpcingest_argv

OLD_COMMON = ["--redis_host", "h", "--redis_port", "6379", "--profile_filename", "p.json", "--profile_level", "INFO",
              "--log_interval", "2"]


@pytest.mark.parametrize("command", [["list"], ["stop", "j"], ["watch", "j"], ["start", "/src", "/zone/t"]])
def test_every_command_takes_the_old_common_options_and_names_them(command):
    args = build_parser().parse_args([*command, *OLD_COMMON])
    warnings = ignored_option_warnings(args)
    assert len(warnings) == 3
    assert warnings[0].startswith("--redis_host, --redis_port: Celery/Redis options")
    assert warnings[1].startswith("--profile_filename, --profile_level: the old framework's profile events")
    assert "`start --profile`" in warnings[1]
    assert warnings[2].startswith("--log_interval has no effect without --log_when")


def test_log_interval_with_log_when_is_not_named():
    args = build_parser().parse_args(["list", "--log_when", "D", "--log_interval", "2"])
    assert ignored_option_warnings(args) == []


@pytest.mark.parametrize("command", [["list"], ["stop", "j"], ["watch", "j"], ["report", "j"]])
def test_profile_is_a_start_option_only(command):
    """The old tool offered --profile on start only; on the job commands it meant nothing."""
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--profile"])


def test_a_job_command_prints_each_warning_once(tmp_path):
    result = subprocess.run(hpcingest_argv("list", "--job_dir", str(tmp_path), *OLD_COMMON), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == ["hpcingest list"] * 3
