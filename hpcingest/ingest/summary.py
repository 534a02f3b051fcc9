"""The end-of-pass summary of `start`: counts from every rank, brought to rank 0 by the walk's
closing round (no collective after the walk: at 256 ranks on two cores each took about a second)."""

from __future__ import annotations

import json
import os
import pickle
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields

from hpcingest.engine import EngineStats
from hpcingest.escaping import json_safe, terminal_text
from hpcingest.ingest.config import IngestConfig
from hpcingest.ingest.sink import IngestCounters
from hpcingest.irods.timing import ApiLatency, merge_latencies


@dataclass
class IngestSummary:
    job_name: str
    source: str
    target: str
    ranks: int
    elapsed_s: float
    entries: int
    unchanged: int
    created: dict[str, int]
    updated: dict[str, int]
    metadata_only: int
    ignored_existing: int
    collections_created: int
    collections_existing: int
    failed: int
    skipped: int
    retries: int
    bytes_put: int
    catalog_queries: int
    entries_per_s: float
    ranks_with_connections: int = 0
    agents_refused: int = 0  # logins the server refused an agent (its catalog full: see the README's sizing)
    directories_resumed: int = 0
    state_seconds: float = 0.0  # summed over ranks: time in the sync-state sqlite shards
    state_cpu_seconds: float = 0.0
    cpu_seconds: float = 0.0  # summed over ranks: CPU time of the pass
    entries_per_rank: list[int] = field(default_factory=list)
    balance_max_over_mean: float = 1.0
    entries_by_type: dict[str, int] = field(default_factory=dict)  # regular, directory, link, ...
    bytes_scanned: int = 0  # total size of the regular files seen
    bytes_registered: int = 0  # total size of the files registered in place
    bytes_put_per_s: float = 0.0
    irods_calls: dict[str, dict] = field(default_factory=dict)  # by API: calls, mean/p50/p95/p99/max ms
    steals: int = 0
    deleted_objects: int = 0
    deleted_collections: int = 0
    too_young: int = 0  # --min_age: changed too recently, left for a later pass
    batches: int = 0  # stat batches ingested (the old framework's tasks)
    failed_batches: int = 0
    profile: str | None = None  # where `hpcingest profile` finds this pass's recording

    def to_json(self) -> str:
        """Valid UTF-8 JSON text; a source or target that is not UTF-8 keeps its exact bytes in
        ``source_b64``/``target_b64`` (hpcingest.escaping)."""
        return json.dumps(json_safe(asdict(self)), indent=2)

    def counters_for_record(self) -> dict:
        return {"files": self.entries, "created": sum(self.created.values()), "updated": sum(self.updated.values()),
                "unchanged": self.unchanged, "failures": self.failed, "skipped": self.skipped,
                "retries": self.retries, "too_young": self.too_young, "bytes": self.bytes_put,
                "bytes_registered": self.bytes_registered,
                "elapsed_s": self.elapsed_s, "batches": self.batches, "failed_batches": self.failed_batches}

    def to_text(self, encoding: str | None = "utf-8") -> str:
        """For a terminal writing ``encoding``: the job name, source and target are escaped
        (hpcingest.escaping), so a hostile name cannot colour, move or forge the output."""
        def by_op(counts: dict[str, int]) -> str:
            return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "0"

        def shown(text: str) -> str:
            return terminal_text(text, encoding)

        return "\n".join([
            f"job {shown(self.job_name)}: {shown(self.source)} -> {shown(self.target)} with {self.ranks} rank(s) in "
            f"{self.elapsed_s:.3f} s ({self.entries_per_s:,.0f} entries/s)",
            "scanned " + (", ".join(f"{k} {v:,}" for k, v in sorted(self.entries_by_type.items())) or "nothing")
            + f"; {self.bytes_scanned:,} bytes in regular files; balance max/mean {self.balance_max_over_mean:.2f}"
            f" over {self.ranks} rank(s), {self.steals:,} steals",
            f"entries {self.entries:,}: created {by_op(self.created)}; updated {by_op(self.updated)}; "
            f"unchanged {self.unchanged:,}; metadata-only {self.metadata_only:,}; "
            f"existing left alone (PUT) {self.ignored_existing:,}",
            f"collections created {self.collections_created:,}, existing {self.collections_existing:,}"
            + (f"; deleted (gone from the source) {self.deleted_objects:,} objects, "
               f"{self.deleted_collections:,} collections" if self.deleted_objects or self.deleted_collections
               else ""),
            f"failed {self.failed:,}  skipped {self.skipped:,}  retries {self.retries:,}  "
            f"bytes uploaded {self.bytes_put:,}  bytes registered {self.bytes_registered:,}  catalog queries {self.catalog_queries:,}  "
            f"ranks with iRODS connections {self.ranks_with_connections}"
            + (f" (the server refused an agent {self.agents_refused:,} times: see `--irods_connections`)"
               if self.agents_refused else "")
            + (f"  directories finished before the resume {self.directories_resumed:,}"
               if self.directories_resumed else "")
            + (f"  too young (left for a later pass) {self.too_young:,}" if self.too_young else ""),
            *self._api_lines(),
            *([f"profile recorded: `hpcingest profile {shown(self.job_name)}` draws it"] if self.profile else []),
        ])

    def _api_lines(self) -> list[str]:
        if not self.irods_calls:
            return []
        lines = [f"{'iRODS API':28s} {'calls':>9s} {'mean ms':>9s} {'p50 ms':>9s} {'p95 ms':>9s} {'p99 ms':>9s}"
                 f" {'max ms':>9s}"]
        for api, c in sorted(self.irods_calls.items(), key=lambda kv: -kv[1]["calls"]):
            lines.append(f"{api:28s} {c['calls']:9,d} {c['mean_ms']:9.3f} {c['p50_ms']:9.3f} {c['p95_ms']:9.3f}"
                         f" {c['p99_ms']:9.3f} {c['max_ms']:9.3f}")
        return lines


@dataclass
class RankPart:
    """One rank's share of the summary, carried to rank 0 by the walk's closing round."""

    counters: IngestCounters
    steals: int
    latencies: dict[str, tuple]  # by API: ApiLatency.sparse()

    @classmethod
    def of(cls, counters: IngestCounters, stats: EngineStats, latencies: dict[str, ApiLatency]) -> "RankPart":
        return cls(counters, stats.steals_succeeded, {api: latency.sparse() for api, latency in latencies.items()})

    def to_bytes(self) -> bytes:
        """Pickled: Python ints stay exact at any size (byte totals pass 2**53, 9 PB)."""
        return pickle.dumps(self)


def summarize(config: IngestConfig, outcome) -> IngestSummary:
    """Rank 0: every rank's part of a :class:`~hpcingest.ingest.job.PassOutcome`, reduced."""
    parts = [pickle.loads(report) for report in outcome.reports]
    counters = [p.counters for p in parts]
    elapsed = time.time() - outcome.started
    total = {f.name: (Counter() if isinstance(getattr(counters[0], f.name), Counter) else 0)
             for f in fields(counters[0])}
    for part in counters:
        for name in total:
            total[name] = total[name] + getattr(part, name)
    per_rank = [p.entries for p in counters]
    mean = sum(per_rank) / len(per_rank)
    calls = merge_latencies([{api: ApiLatency.from_sparse(s) for api, s in p.latencies.items()} for p in parts])
    return IngestSummary(
        job_name=config.job_name, source=os.fsdecode(config.root), target=config.target, ranks=len(parts),
        elapsed_s=round(elapsed, 6), entries=total["entries"], unchanged=total["unchanged"],
        created=dict(total["created"]), updated=dict(total["updated"]), metadata_only=total["metadata_only"],
        ignored_existing=total["ignored_existing"], collections_created=total["collections_created"],
        collections_existing=total["collections_existing"], failed=total["failed"], skipped=total["skipped"],
        retries=total["retries"], bytes_put=total["bytes_put"], catalog_queries=total["catalog_queries"],
        entries_per_s=_rate(total["entries"], elapsed),
        ranks_with_connections=sum(1 for p in counters if p.connections_opened),
        agents_refused=total["agents_refused"],
        directories_resumed=total["directories_resumed"],
        state_seconds=round(total["state_seconds"], 6),
        state_cpu_seconds=round(total["state_cpu_seconds"], 6), cpu_seconds=round(total["cpu_seconds"], 6),
        entries_per_rank=per_rank, balance_max_over_mean=round(max(per_rank) / mean, 4) if mean else 1.0,
        entries_by_type=dict(total["by_type"]), bytes_scanned=total["bytes_scanned"],
        bytes_registered=total["bytes_registered"],
        bytes_put_per_s=_rate(total["bytes_put"], elapsed),
        irods_calls={api: latency.summary() for api, latency in sorted(calls.items())},
        steals=sum(p.steals for p in parts), profile=outcome.profile_dir,
        deleted_objects=total["deleted_objects"], deleted_collections=total["deleted_collections"],
        too_young=total["too_young"],
        batches=total["batches"], failed_batches=total["failed_batches"],
    )


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0
