"""A job request: the old framework's YAML (or JSON) body, checked and turned into a `start`.

The old REST API took ``root``, ``target``, ``interval``, ``timeout``, ``event_handler``,
``event_handler_data``, ``append_json`` and ``all``.  Here every key is checked before
anything is written: a key that is neither an old key nor a `hpcingest start` option, a value
of the wrong type, or a request `start` itself would refuse, is a :class:`SpecError` (HTTP
400) naming the key.  The `start` options are read from the `start` command's own parser, so
the two never drift apart.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

from hpcingest.jobdir import check_job_name

#: Old keys that mean nothing here: accepted, and named in the response as ignored.
IGNORED_OLD_KEYS = {
    "append_json": "no meaning here: handlers get hpcingest's meta, without append_json",
    "all": "no meaning here",
    "max_retries": "the event handler's max_retries() decides, per file",
    "job_name": "the job's name is the one in the URL (or the generated one)",
}
#: `start` options a request may not set: the service sets them, or they make no sense unattended.
SERVICE_SET = {"help", "src", "target", "job_name", "job_dir", "event_handler", "interval", "progress"}
MAX_RANKS = 100_000
#: Slurm sends the pass TERM 120 s before the time limit (jobs/slurm/*.sbatch), so a shorter
#: limit would stop every pass as it starts.
MIN_SLURM_TIME_LIMIT_S = 300


class SpecError(ValueError):
    """A request that cannot become a job: HTTP 400 with this message (``key`` names the key)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


@dataclass
class JobSpec:
    """What a request asks for, checked: the `start` options are ready to append to
    ``start SRC TARGET`` (each ``--name=value`` or ``--flag``; never a secret)."""

    name: str
    source: str
    target: str
    start_options: list[str] = field(default_factory=list)
    handler_text: str | None = None  # event_handler_data: stored 0600 in the job directory, never echoed
    handler_path: str | None = None  # event_handler without data: a handler file on the service host
    interval: int | None = None
    ranks: int | None = None
    timeout_s: float | None = None  # the Slurm time limit (see the README: old `timeout`)
    ignored: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StartOption:
    """One `hpcingest start` option as a request key: its flag and the type of its value."""

    flag: str
    kind: str  # "bool", "int", "float", "str", "list", "legacy"


def start_options() -> dict[str, StartOption]:
    """The request keys that are `start` options, from the `start` parser itself."""
    from hpcingest.cli import build_parser

    parser = _start_parser(build_parser())
    options = {}
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of a parser's options
        if not action.option_strings or action.dest in SERVICE_SET:
            continue
        flag = max(action.option_strings, key=len)
        if (action.help or "").startswith("accepted"):  # old Celery, Redis and profiling options
            kind = "legacy"
        elif action.nargs == 0:
            kind = "bool"
        elif action.nargs in ("+", "*"):
            kind = "list"
        elif action.type in (int, float):
            kind = action.type.__name__
        else:
            kind = "str"
        options[action.dest] = StartOption(flag, kind)
    return options


def _start_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return commands.choices["start"]


# -- the body -------------------------------------------------------------------------------
def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """The request body as a mapping: JSON when the content type says so, else YAML (read with
    a safe loader that also refuses a key given twice)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("the body is not UTF-8 text") from None
    try:
        if content_type.split(";")[0].strip().lower() in ("application/json", "text/json"):
            data = json.loads(text, object_pairs_hook=_unique_pairs)
        else:
            data = _load_yaml(text)
    except SpecError:
        raise
    except ValueError as err:
        raise SpecError(f"the body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise SpecError("the body must be a mapping of job options (root, target, ...), in YAML or JSON")
    return data


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise SpecError("given twice", str(key))
        data[key] = value
    return data


def _load_yaml(text: str) -> Any:
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """yaml.SafeLoader (plain data only, never objects) that refuses a key given twice."""

        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(k, deep=True) for k, _ in node.value]
            for i, key in enumerate(keys):
                if isinstance(key, (str, int, float, bool)) and key in keys[:i]:
                    raise SpecError("given twice", str(key))
            return super().construct_mapping(node, deep)

    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"the body is not valid YAML{where}: {problem}") from None


# -- the keys -------------------------------------------------------------------------------
def build_spec(name: str, data: dict[str, Any], launcher: str) -> JobSpec:
    """Check every key of ``data`` and map it; ``launcher`` is "slurm" or "mpiexec"."""
    try:
        check_job_name(name)
    except ValueError as err:
        raise SpecError(str(err)) from None
    unknown_types = [k for k in data if not isinstance(k, str)]
    if unknown_types:
        raise SpecError(f"keys must be strings, not {type(unknown_types[0]).__name__}", str(unknown_types[0]))
    options = start_options()
    spec = JobSpec(name=name, source=_path(data, "root"), target=_path(data, "target"))
    handled = {"root", "target"}
    for key, value in data.items():
        if key in handled or value is None:
            continue
        if key in IGNORED_OLD_KEYS:
            spec.ignored[key] = IGNORED_OLD_KEYS[key]
        elif key == "interval":
            spec.interval = _number(key, value, int, minimum=1)
        elif key == "ranks":
            spec.ranks = _number(key, value, int, minimum=1, maximum=MAX_RANKS)
        elif key == "timeout":
            _timeout(spec, _number(key, value, float, minimum=1), launcher)
        elif key == "event_handler_data":
            spec.handler_text = _handler_text(value)
        elif key == "event_handler":
            _event_handler(spec, data, value)
        elif key in options:
            _start_option(spec, key, value, options[key])
        else:
            raise SpecError("unknown key: neither a key of the old job API (root, target, interval, timeout, "
                            "event_handler, event_handler_data, append_json, all) nor a `hpcingest start` option",
                            key)
    return spec


def _path(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        raise SpecError("required", key)
    value = _text(key, value)
    if not value.startswith("/"):
        raise SpecError(f"must be an absolute path, not {value!r}", key)
    return value


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SpecError(f"must be a string, not {_type_name(value)}", key)
    if "\0" in value:
        raise SpecError("must not contain a NUL character", key)
    return value


def _number(key: str, value: Any, kind: type, minimum: float | None = None, maximum: float | None = None):
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) \
            or (isinstance(value, float) and not math.isfinite(value)):
        wanted = "a number" if kind is float else "a whole number"
        raise SpecError(f"must be {wanted}, not {_type_name(value)} {value!r}", key)
    if minimum is not None and value < minimum:
        raise SpecError(f"must be at least {minimum:g}, not {value!r}", key)
    if maximum is not None and value > maximum:
        raise SpecError(f"must be at most {maximum:g}, not {value!r}", key)
    return value


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "a whole number", float: "a number", str: "a string", list: "a list",
            dict: "a mapping", type(None): "null"}.get(type(value), type(value).__name__)


def _timeout(spec: JobSpec, seconds: float, launcher: str) -> None:
    if launcher != "slurm":
        spec.ignored["timeout"] = "no meaning for a local mpiexec run: it is the Slurm time limit of each pass"
        return
    if seconds < MIN_SLURM_TIME_LIMIT_S:
        raise SpecError(f"is the Slurm time limit of each pass, which gets TERM 120 s before it: give at least "
                        f"{MIN_SLURM_TIME_LIMIT_S} s, not {seconds:g}", "timeout")
    spec.timeout_s = seconds


def _handler_text(value: Any) -> str:
    text = _text("event_handler_data", value)
    try:
        compile(text, "event_handler_data", "exec")  # checked, never run, by the service
    except SyntaxError as err:
        raise SpecError(f"is not valid Python: {err.msg} (line {err.lineno})", "event_handler_data") from None
    except ValueError as err:
        raise SpecError(f"is not valid Python: {err}", "event_handler_data") from None
    return text


def _event_handler(spec: JobSpec, data: dict[str, Any], value: Any) -> None:
    name = _text("event_handler", value)
    if data.get("event_handler_data") is not None:
        spec.ignored["event_handler"] = "the handler is event_handler_data (stored in the job directory)"
    elif not name.startswith("/") or not name.endswith(".py"):
        raise SpecError("without event_handler_data it names a handler file on the service's host: an "
                        f"absolute path to a .py file, not {name!r}", "event_handler")
    else:
        spec.handler_path = name


def _start_option(spec: JobSpec, key: str, value: Any, option: StartOption) -> None:
    if option.kind == "legacy":
        spec.ignored[key] = "an old Celery/Redis/profiling option; hpcingest has no use for it"
    elif option.kind == "bool":
        if not isinstance(value, bool):
            raise SpecError(f"must be true or false, not {_type_name(value)} {value!r}", key)
        if value:
            spec.start_options.append(option.flag)
    elif option.kind == "list":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise SpecError(f"must be a string or a list of strings, not {_type_name(value)}", key)
        for item in items:
            if _text(key, item).startswith("-"):
                raise SpecError(f"an item may not begin with '-': {item!r}", key)
        spec.start_options += [option.flag, *items]
    elif option.kind in ("int", "float"):
        number = _number(key, value, int if option.kind == "int" else float)
        spec.start_options.append(f"{option.flag}={number}")
    else:
        spec.start_options.append(f"{option.flag}={_text(key, value)}")


def check_with_start(spec: JobSpec, job_root: str) -> None:
    """Let `start`'s own checks judge the request (options, source, target, handler file,
    exclusions...), before anything is written or submitted; a refusal is a SpecError."""
    from hpcingest.cli import build_parser
    from hpcingest.ingest.config import build_config

    argv = ["start", spec.source, spec.target, "--job_name", spec.name, "--job_dir", job_root,
            *spec.start_options]
    if spec.handler_path:
        argv += ["--event_handler", spec.handler_path]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args = build_parser().parse_args(argv)
    except SystemExit:
        message = errors.getvalue().strip().splitlines()
        raise SpecError(message[-1].split("error: ", 1)[-1] if message else "the options do not parse") from None
    try:
        build_config(args)
    except ValueError as err:  # ConfigError, JobError, the source's and exclusions' errors
        raise SpecError(str(err)) from None
