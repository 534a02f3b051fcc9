"""Job requests: the old YAML keys, `start` options under their own names, and refusals that
name the key (no service, no job: the checks alone)."""

from __future__ import annotations

import os

import pytest

from hpcingest.serve.spec import SpecError, build_spec, check_with_start, parse_body

OLD_HANDLER = """from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.PUT_SYNC
"""


def spec(body: str, launcher: str = "mpiexec", content_type: str = "application/x-yaml", name: str = "j"):
    return build_spec(name, parse_body(body.encode(), content_type), launcher)


def test_the_old_readme_body_maps_to_start():
    body = ("root: /data\ntarget: /tempZone/home/rods/data\ninterval: 60\nappend_json: '{\"a\": 1}'\n"
            "timeout: 3600\nall: true\nevent_handler: my_handler\nevent_handler_data: |\n"
            + "".join(f"    {line}\n" for line in OLD_HANDLER.splitlines()))
    job = spec(body, launcher="slurm")
    assert (job.source, job.target, job.interval, job.timeout_s) == ("/data", "/tempZone/home/rods/data", 60, 3600)
    assert job.handler_text == OLD_HANDLER and job.handler_path is None
    assert set(job.ignored) == {"append_json", "all", "event_handler"}
    local = spec(body)
    assert local.timeout_s is None and "timeout" in local.ignored  # no Slurm: no time limit to set


def test_start_options_under_their_own_names_in_yaml_and_json():
    body = ('{"root": "/d", "target": "/z/home/u/d", "files_per_task": 7, "irods_connections": 2, '
            '"log_level": "INFO", "profile": true, "checksum": false, "ranks": 3, "min_age": 2.5, '
            '"exclude_file_name": [".*\\\\.tmp", ".*~"], "redis_host": "old"}')
    for content_type in ("application/json", "application/x-yaml"):
        job = spec(body, content_type=content_type)
        assert job.start_options == ["--files_per_task=7", "--irods_connections=2", "--log_level=INFO", "--profile",
                                     "--min_age=2.5", "--exclude_file_name", r".*\.tmp", ".*~"]
        assert job.ranks == 3 and set(job.ignored) == {"redis_host"}


@pytest.mark.parametrize("body, key, words", [
    ("root: /d\ntarget: /z/c\nbogus: 1\n", "bogus", "unknown key"),
    ("root: /d\ntarget: /z/c\nfiles_per_task: many\n", "files_per_task", "whole number"),
    ("root: /d\ntarget: /z/c\nfiles_per_task: true\n", "files_per_task", "whole number"),
    ("root: /d\ntarget: /z/c\ninterval: 0\n", "interval", "at least 1"),
    ("root: /d\ntarget: /z/c\nprofile: yes please\n", "profile", "true or false"),
    ("root: /d\ntarget: /z/c\nmin_age: .nan\n", "min_age", "a number"),
    ("root: /d\ntarget: /z/c\nexclude_file_name: [-x]\n", "exclude_file_name", "begin with '-'"),
    ("root: /d\ntarget: /z/c\nevent_handler_data: 'def x(:'\n", "event_handler_data", "not valid Python"),
    ("root: /d\ntarget: /z/c\nevent_handler: relative.py\n", "event_handler", "absolute path"),
    ("root: /d\ntarget: /z/c\njob_dir: /elsewhere\n", "job_dir", "unknown key"),
    ("root: /d\ntarget: /z/c\nroot: /e\n", "root", "given twice"),
    ("target: /z/c\n", "root", "required"),
    ("root: d\ntarget: /z/c\n", "root", "absolute path"),
    ("root: /d\ntarget: [/z/c]\n", "target", "must be a string"),
])
def test_each_wrong_key_is_named(body, key, words):
    with pytest.raises(SpecError) as refused:
        spec(body)
    assert refused.value.key == key and words in str(refused.value)


@pytest.mark.parametrize("body, words", [
    ("root: [unclosed\n", "not valid YAML (line 2"),
    ("- root\n- target\n", "must be a mapping"),
    ("just text", "must be a mapping"),
    ("!!python/object/apply:os.system ['touch /tmp/hpcingest-never']\n", "not valid YAML"),
    ("root: !!python/name:os.system\ntarget: /z/c\n", "not valid YAML"),
    ("\xff\xfe", "not UTF-8"),
])
def test_bodies_that_are_no_job_are_refused_and_never_run(body, words):
    with pytest.raises(SpecError) as refused:
        build_spec("j", parse_body(body.encode("latin-1"), ""), "mpiexec")
    assert words in str(refused.value)
    assert not os.path.exists("/tmp/hpcingest-never")


def test_a_bad_name_and_a_json_key_given_twice():
    with pytest.raises(SpecError, match="invalid job name"):
        spec("root: /d\ntarget: /z/c\n", name="../x")
    with pytest.raises(SpecError, match="given twice"):
        spec('{"root": "/d", "root": "/e", "target": "/z/c"}', content_type="application/json")


def test_a_slurm_time_limit_shorter_than_the_warning_is_refused():
    with pytest.raises(SpecError, match="at least 300 s") as refused:
        spec("root: /d\ntarget: /z/c\ntimeout: 60\n", launcher="slurm")
    assert refused.value.key == "timeout"


def test_start_itself_judges_the_request(tmp_path):
    (tmp_path / "src").mkdir()
    check_with_start(spec(f"root: {tmp_path}/src\ntarget: /z/home/u/c\n"), str(tmp_path / "jobs"))
    with pytest.raises(SpecError, match="does not exist|No such file"):
        check_with_start(spec(f"root: {tmp_path}/missing\ntarget: /z/home/u/c\n"), str(tmp_path / "jobs"))
    with pytest.raises(SpecError, match="log level|--log_level"):
        check_with_start(spec(f"root: {tmp_path}/src\ntarget: /z/c\nlog_level: LOUD\n"), str(tmp_path / "jobs"))
    with pytest.raises(SpecError, match=r"\.prom"):
        check_with_start(spec(f"root: {tmp_path}/src\ntarget: /z/c\nmetrics_file: {tmp_path}/m.txt\n"),
                         str(tmp_path / "jobs"))
    assert not os.path.exists(tmp_path / "jobs")  # checking writes nothing
