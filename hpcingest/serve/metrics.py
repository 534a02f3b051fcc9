"""Prometheus metrics of jobs, formatted by prometheus_client: ``GET /metrics`` of the service,
and ``hpcingest start --metrics_file F`` for node_exporter's textfile collector (jobs run
straight from sbatch, without the service).

Every value is read from the job views (hpcingest.serve.state) at scrape time: the counts of
the current pass, or of the last pass once it ended (so a finished job's match its summary),
and the iRODS calls of the last finished pass.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from hpcingest.outputs import replace_file
from hpcingest.serve.state import STATES

_OUTCOMES = ("created", "updated", "unchanged", "failed", "skipped", "too_young")
METRICS_FILE_PERIOD_S = 5.0


class JobsCollector:
    """A prometheus_client collector over the views ``views()`` returns when scraped."""

    def __init__(self, views: Callable[[], Iterable[dict]]) -> None:
        self.views = views

    def describe(self):
        return []  # the families depend on the jobs: nothing to check at registration

    def collect(self):
        def family(name: str, text: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"hpcingest_job_{name}", text, labels=["job", *labels])

        state = family("state", "1 for the job's state (pending, running, done, failed, stopped), else 0", "state")
        passes = family("pass", "the job's pass number (periodic jobs count up)")
        entries = family("entries_scanned", "entries scanned by the current pass (the last one once it ended)")
        files = family("files", "entries of the current (or last) pass by outcome", "outcome")
        uploaded = family("bytes_uploaded", "bytes uploaded by the current (or last) pass")
        registered = family("bytes_registered", "bytes registered in place by the current (or last) pass")
        retries = family("retries", "retried attempts in the current (or last) pass")
        rate = family("entries_per_second", "entries per second of the running pass (0 when none runs)")
        calls = family("irods_calls", "iRODS API calls of the last finished pass", "api")
        elapsed = family("last_pass_seconds", "how long the last finished pass took")
        for view in self.views():
            job, progress = view["job_name"], view.get("progress") or {}
            for name in STATES:
                state.add_metric([job, name], 1.0 if view["state"] == name else 0.0)
            passes.add_metric([job], view.get("pass", 0))
            entries.add_metric([job], progress.get("entries", 0))
            for outcome in _OUTCOMES:
                files.add_metric([job, outcome], progress.get(outcome, 0))
            uploaded.add_metric([job], progress.get("bytes_uploaded", 0))
            registered.add_metric([job], progress.get("bytes_registered", 0))
            retries.add_metric([job], progress.get("retries", 0))
            running = view["state"] == "running" and not view.get("waiting")
            rate.add_metric([job], progress.get("rate", 0.0) if running else 0.0)
            summary = view.get("summary") or {}
            for api, latency in sorted((summary.get("irods_calls") or {}).items()):
                calls.add_metric([job, api], latency.get("calls", 0))
            if summary:
                elapsed.add_metric([job], summary.get("elapsed_s", 0.0))
        yield from (state, passes, entries, files, uploaded, registered, retries, rate, calls, elapsed)


def registry_for(views: Callable[[], Iterable[dict]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector(views))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format of everything in ``registry``."""
    return generate_latest(registry)


class MetricsFile:
    """`start --metrics_file F` on rank 0: F is rewritten every few seconds while the job runs
    and once more at its end, each time through a temporary file renamed over it (what
    node_exporter's textfile collector needs: it never reads half a file)."""

    def __init__(self, path: str, job, period_s: float = METRICS_FILE_PERIOD_S) -> None:
        from hpcingest.serve.state import JobViews

        self.path = path
        views = JobViews()
        self.registry = registry_for(lambda: [views.view(job, None)])
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hpcingest-metrics-file", daemon=True)

    def __enter__(self) -> "MetricsFile":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.write()

    def write(self) -> None:
        """prometheus_client's write_to_textfile opened a temporary file of a predictable name
        (F.PID.THREAD) following links, and renamed it over whatever F had become;
        hpcingest.outputs.replace_file creates its temporary file and replaces F only while F
        is a regular file or nothing."""
        try:
            replace_file(self.path, exposition(self.registry))
        except OSError:
            pass  # metrics are best effort; the ingest must not fail for them

    def _run(self) -> None:
        self.write()
        while not self._stop.wait(self.period_s):
            self.write()
