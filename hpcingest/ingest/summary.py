"""The end-of-pass summary of `start`: counts from every rank, gathered without blocking."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields

from hpcingest import collectives
from hpcingest.engine import EngineStats
from hpcingest.ingest.config import IngestConfig


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
    directories_resumed: int = 0
    state_seconds: float = 0.0  # summed over ranks: time in the sync-state sqlite shards
    state_cpu_seconds: float = 0.0
    cpu_seconds: float = 0.0  # summed over ranks: CPU time of the pass
    entries_per_rank: list[int] = field(default_factory=list)
    balance_max_over_mean: float = 1.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def counters_for_record(self) -> dict:
        return {"files": self.entries, "created": sum(self.created.values()), "updated": sum(self.updated.values()),
                "unchanged": self.unchanged, "failures": self.failed, "skipped": self.skipped,
                "retries": self.retries, "bytes": self.bytes_put, "elapsed_s": self.elapsed_s}

    def to_text(self) -> str:
        def by_op(counts: dict[str, int]) -> str:
            return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "0"

        return "\n".join([
            f"job {self.job_name}: {self.source} -> {self.target} with {self.ranks} rank(s) in "
            f"{self.elapsed_s:.3f} s ({self.entries_per_s:,.0f} entries/s)",
            f"entries {self.entries:,}: created {by_op(self.created)}; updated {by_op(self.updated)}; "
            f"unchanged {self.unchanged:,}; metadata-only {self.metadata_only:,}; "
            f"existing left alone (PUT) {self.ignored_existing:,}",
            f"collections created {self.collections_created:,}, existing {self.collections_existing:,}",
            f"failed {self.failed:,}  skipped {self.skipped:,}  retries {self.retries:,}  "
            f"bytes uploaded {self.bytes_put:,}  catalog queries {self.catalog_queries:,}  "
            f"ranks with iRODS connections {self.ranks_with_connections}"
            + (f"  directories finished before the resume {self.directories_resumed:,}"
               if self.directories_resumed else ""),
        ])


def summarize(comm, config: IngestConfig, counters, stats: EngineStats, started: float) -> IngestSummary | None:
    parts = collectives.gather_objects(comm, counters)
    if comm.Get_rank() != 0:
        return None
    elapsed = time.time() - started
    total = {f.name: (Counter() if isinstance(getattr(parts[0], f.name), Counter) else 0) for f in fields(parts[0])}
    for part in parts:
        for name in total:
            total[name] = total[name] + getattr(part, name)
    per_rank = [p.entries for p in parts]
    mean = sum(per_rank) / len(per_rank)
    return IngestSummary(
        job_name=config.job_name, source=os.fsdecode(config.root), target=config.target, ranks=len(parts),
        elapsed_s=round(elapsed, 6), entries=total["entries"], unchanged=total["unchanged"],
        created=dict(total["created"]), updated=dict(total["updated"]), metadata_only=total["metadata_only"],
        ignored_existing=total["ignored_existing"], collections_created=total["collections_created"],
        collections_existing=total["collections_existing"], failed=total["failed"], skipped=total["skipped"],
        retries=total["retries"], bytes_put=total["bytes_put"], catalog_queries=total["catalog_queries"],
        entries_per_s=round(total["entries"] / elapsed, 1) if elapsed > 0 else 0.0,
        ranks_with_connections=sum(1 for p in parts if p.connections_opened),
        directories_resumed=total["directories_resumed"],
        state_seconds=round(total["state_seconds"], 6),
        state_cpu_seconds=round(total["state_cpu_seconds"], 6), cpu_seconds=round(total["cpu_seconds"], 6),
        entries_per_rank=per_rank, balance_max_over_mean=round(max(per_rank) / mean, 4) if mean else 1.0,
    )
