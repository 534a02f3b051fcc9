"""The scale model behind benchmarks/scale.py: from 16-64 ranks on one machine to 256-4,096.

Kept apart from the runs because it is pure arithmetic (no MPI, no files): it can be read,
checked and reused without running anything.  benchmarks/scale.py measures a
:class:`Calibration`, combines it with :class:`FieldParameters` and prints
:class:`Prediction` rows and the walk-time plot.

The model, per job of P ranks walking N entries (all times in seconds):

* per-rank rate      r    = 1 / (1 / r_field + c_cpu)
* scaling efficiency e(P) = e2 ** max(0, log2(P / P_ref))
* job rate           X(P) = min(e(P) * P * r, C_mds, max_rate)
* walk time          T(P) = N / X(P) + T_start + T_ramp(P) + T_term(P)
* ramp-up            T_ramp(P) = log2(P) * (files_per_task / r + h)
* termination        T_term(P) = (2 * waves + 1) * depth_8(P) * h
* messages per entry m(P) = (2 * S(P) * P + W * 2 * (P - 1) + (P - 1)) / N
                            [+ 2 * (1 - K / P) / files_per_task when ingesting through K connections]
* memory per rank    M(P) = M_0 + m_local * L + m_remote * peers(P)
                            [+ window * (P - K) * files_per_task * b_entry on a rank holding a connection]
* iRODS connections  K(R) = ceil(R * (t_server + t_client + t_rtt)), feasible if R * t_server <= catalog cores

where r_field, C_mds, e2, h, ... are :class:`FieldParameters` (each with its source) and
c_cpu, S(P), W, M_0, m_local, b_entry come from the runs (:class:`Calibration`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields


def _param(default: float, source: str):
    """A model parameter and where its value comes from (printed into RESULTS.md)."""
    return field(default=default, metadata={"source": source})


@dataclass
class FieldParameters:
    """What a production site looks like; every default says where it comes from."""

    files: float = _param(1e9, "the issue: time to walk 1 billion files")
    per_rank_stat_rate: float = _param(
        1100.0, "walk-anchors §0.3/§1.4: dwalk walked 540 M files in 7,282 s on 2 x 32 ranks "
        "(1.16 k/s per rank) and 542 M in 3,755 s on 4 x 32 (1.13 k/s per rank) [doc]")
    reference_ranks: float = _param(64, "the dwalk run the per-rank rate comes from (2 nodes x 32 ranks)")
    efficiency_per_doubling: float = _param(
        0.973, "dwalk 64 -> 128 ranks: 74.2 k/s -> 144.3 k/s, i.e. 0.973 of linear; applied per doubling "
        "beyond 64 ranks [assumption: one data point, extrapolated]")
    mds_capacity: float = _param(
        300_000.0, "walk-anchors §6.1: one Lustre MDT served > 400 k stat/s at 240 threads (Dell, 2015); "
        "'a few hundred thousand per metadata server'; 256 x 1.1 k = 280 k is 'already close' [doc]")
    max_rate: float = _param(math.inf, "hpcingest --max_rate (none by default)")
    files_per_task: float = _param(50, "hpcingest default --files_per_task: names per stat batch [code]")
    tree_width: float = _param(8, "engine.py tree_width: termination waves run over an 8-ary tree [code]")
    waves_to_detect: float = _param(
        2, "engine.py four-counter method: two consecutive waves with equal counts after the last "
        "work message [code]")
    idle_hop_s: float = _param(
        2.5e-3, "collectives.Backoff: an idle rank sleeps up to 5 ms between polls, so a wave waits "
        "about half of that at each hop [code]")
    network_hop_s: float = _param(
        5e-6, "walk-anchors §4.3: one hop with busy polling and no oversubscription is about 5 us "
        "(shared memory; a fabric adds a few us [U])")
    startup_s: float = _param(
        30.0, "[U] srun + Python/mpi4py import of thousands of ranks from a shared filesystem; "
        "this machine's measured start-up is printed next to it")
    ranks_per_node: float = _param(32, "dwalk's runs used 32 ranks per node (walk-anchors §1.4)")
    remote_peer_kib: float = _param(
        16.0, "[U] transport state per remote peer a rank has talked to (UCX/OFI endpoint); "
        "not measurable on one machine")
    funnel_window: float = _param(8, "ingest/funnel.py: at most 8 unacknowledged batches per "
                                  "(sender, connected rank) [code]")
    irods_server_cpu_s: float = _param(
        4.3e-3, "shared/research/irods-protocol.md §10: real iRODS 5.0.2 + PostgreSQL 15 spends about "
        "4.3 ms of agent + database CPU per registration (186/s from 1 process, 427/s from 4 on 2 cores) [run]")
    irods_client_s: float = _param(0.38e-3, "same measurement: 0.38 ms of client CPU per registration [run]")
    irods_rtt_s: float = _param(0.2e-3, "[U] one request/response round trip inside a data centre")
    catalog_cores: float = _param(32, "[U] cores serving the catalog (provider agents + PostgreSQL)")
    max_connections: float = _param(100, "PostgreSQL's default max_connections; one database session "
                                    "per iRODS agent (walk-anchors §6.3) [doc][U]")

    def sources(self) -> list[tuple[str, float, str]]:
        return [(f.name, getattr(self, f.name), f.metadata["source"]) for f in fields(self)]


@dataclass
class Calibration:
    """What the real runs measured, one entry per rank count (same order as ``ranks``).

    The steal and wave counts come from the skewed tree, the harder case, so the message
    model errs high.
    """

    ranks: list[int]
    entries: float  # entries of the tree the steal counts were measured on
    cpu_s_per_entry: list[float]  # all ranks' CPU during the walk / entries
    steal_requests_per_rank: list[float]
    waves: list[float]
    termination_latency_s: list[float]
    rss_before_mb: list[float]  # peak RSS per rank before the walk (Python, mpi4py, MPI init)
    rss_peak_mb: list[float]  # peak RSS per rank after the walk
    startup_s: list[float]  # whole command minus the walk: mpiexec, imports, MPI init, summary
    funnel_bytes_per_entry: float  # a forwarded batch's payload, per entry (ingest with K connections)

    def steal_fit(self) -> tuple[float, float]:
        """S(P) = a * P**b: steal requests per rank per job."""
        return power_fit(self.ranks, self.steal_requests_per_rank)

    def waves_fit(self) -> tuple[float, float]:
        return power_fit(self.ranks, self.waves)

    def rss_fit(self) -> tuple[float, float]:
        """Peak RSS per rank = M_0 + m_local * P.  Why the peak and not the RSS before the
        walk: MPI's shared-memory state for a peer is touched only once the two have talked,
        which here (every peer local) happens during the walk."""
        return linear_fit(self.ranks, self.rss_peak_mb)

    def cpu_per_entry(self) -> float:
        """The least oversubscribed run: more ranks per core only adds idle polling."""
        return min(self.cpu_s_per_entry)

    def hop_latency_s(self, tree_width: int, waves_to_detect: float) -> list[float]:
        """The per-hop latency this machine showed (termination latency / hops)."""
        return [t / termination_hops(p, tree_width, waves_to_detect)
                for p, t in zip(self.ranks, self.termination_latency_s)]


@dataclass
class Prediction:
    ranks: int
    job_rate: float  # entries/s
    limited_by: str  # "ranks", "MDS" or "max_rate"
    walk_time_s: float
    startup_s: float
    ramp_s: float
    termination_s: float
    termination_s_this_machine: float  # with the hop latency measured here (scheduling-bound)
    messages_per_entry_scan: float
    messages_per_entry_ingest: float  # plus the funnel's batch + acknowledgement per forwarded batch
    rss_walker_mb: float
    rss_connected_mb: float  # a rank holding an iRODS connection, every sender's window full


@dataclass
class ConnectionPlan:
    target_rate: float  # registrations/s
    per_connection_rate: float
    connections: int
    catalog_cores_needed: float
    feasible: bool
    days_for_files: float


def power_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares of log y = log a + b log x; why a power law: it extrapolates a trend
    measured over 16-64 ranks without assuming its shape beyond 'grows like P**b'."""
    pts = [(math.log(x), math.log(max(y, 1e-9))) for x, y in zip(xs, ys)]
    n = len(pts)
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    b = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else 0.0
    return math.exp(my - b * mx), b


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def tree_depth(ranks: int, width: int) -> int:
    """Hops from rank 0 to the deepest rank of the engine's k-ary tree (parent = (r-1)//k)."""
    depth, last = 0, ranks - 1
    while last > 0:
        last = (last - 1) // width
        depth += 1
    return depth


def termination_hops(ranks: int, width: int, waves: float) -> float:
    """Hops from the last entry to every rank knowing: ``waves`` down-and-up waves, then STOP."""
    depth = tree_depth(ranks, int(width))
    return (2 * waves + 1) * max(depth, 1)


def per_rank_rate(params: FieldParameters, calib: Calibration) -> float:
    """The field stat rate of one rank, slowed by hpcingest's own CPU per entry (measured)."""
    return 1.0 / (1.0 / params.per_rank_stat_rate + calib.cpu_per_entry())


def efficiency(ranks: int, params: FieldParameters) -> float:
    return params.efficiency_per_doubling ** max(0.0, math.log2(ranks / params.reference_ranks))


def job_rate(ranks: int, params: FieldParameters, calib: Calibration) -> tuple[float, str]:
    """Entries/s of the whole job and what limits it."""
    candidates = [
        (efficiency(ranks, params) * ranks * per_rank_rate(params, calib), "ranks"),
        (params.mds_capacity, "MDS"),
        (params.max_rate, "max_rate"),
    ]
    return min(candidates, key=lambda c: c[0])


def walk_time(ranks: int, params: FieldParameters, calib: Calibration) -> float:
    rate, _ = job_rate(ranks, params, calib)
    return params.files / rate + params.startup_s + ramp_time(ranks, params, calib) + \
        termination_time(ranks, params, hop_latency(params))


def hop_latency(params: FieldParameters) -> float:
    return params.idle_hop_s + params.network_hop_s


def ramp_time(ranks: int, params: FieldParameters, calib: Calibration) -> float:
    """Work spreads from one root: each steal round at most doubles the busy ranks and lasts
    about one stat batch (a victim answers between items) plus a hop."""
    batch_s = params.files_per_task / per_rank_rate(params, calib)
    return math.log2(ranks) * (batch_s + hop_latency(params))


def termination_time(ranks: int, params: FieldParameters, hop_s: float) -> float:
    return termination_hops(ranks, params.tree_width, params.waves_to_detect) * hop_s


def messages_per_entry(ranks: int, params: FieldParameters, calib: Calibration,
                       connections: int | None = None) -> float:
    """Control messages per entry: steal request + reply, wave down + up per rank per wave,
    one STOP per rank; with ``connections`` < ranks, the funnel's batch and its
    acknowledgement for every batch walked on a rank without a connection."""
    a, b = calib.steal_fit()
    wa, wb = calib.waves_fit()
    steals = 2 * a * ranks ** b * ranks
    waves = wa * ranks ** wb * 2 * (ranks - 1)
    per_entry = (steals + waves + (ranks - 1)) / params.files
    if connections is not None and connections < ranks:
        per_entry += 2 * (1 - connections / ranks) / params.files_per_task
    return per_entry


def peers_contacted(ranks: int, calib: Calibration) -> float:
    """Distinct peers a rank exchanges steal messages with (random victims, S(P) draws),
    plus its tree parent and up to 8 children."""
    a, b = calib.steal_fit()
    draws = a * ranks ** b
    others = ranks - 1
    return min(others, others * (1 - (1 - 1 / others) ** draws) + 9)


def memory_per_rank(ranks: int, params: FieldParameters, calib: Calibration,
                    connections: int | None = None) -> tuple[float, float]:
    """(walker, rank holding an iRODS connection) peak RSS in MB.

    M_0 and the cost per local peer are the runs' peak RSS fitted against the rank count
    (every peer is local here; the walk's own queue is in M_0, small because a steal reply
    is capped at 1 MiB, the largest directory aside); remote peers cost ``remote_peer_kib``
    each.  A connected rank also queues every sender's funnel window.
    """
    m0, m_local = calib.rss_fit()
    local = min(ranks, params.ranks_per_node)
    remote = max(0.0, peers_contacted(ranks, calib) * (1 - local / ranks))
    walker = m0 + m_local * local + remote * params.remote_peer_kib / 1024
    k = connections if connections is not None else ranks
    senders = max(0, ranks - k)
    queued = params.funnel_window * senders * params.files_per_task * calib.funnel_bytes_per_entry
    return walker, walker + queued / 1e6


def connection_plan(target_rate: float, params: FieldParameters) -> ConnectionPlan:
    """iRODS connections for ``target_rate`` registrations/s.

    One connection is one server agent doing one registration at a time, so it manages
    1 / (server + client + round trip) per second; the catalog as a whole manages
    catalog_cores / server CPU per registration, whatever the number of connections.
    """
    per_conn = 1.0 / (params.irods_server_cpu_s + params.irods_client_s + params.irods_rtt_s)
    k = math.ceil(target_rate / per_conn)
    cores = target_rate * params.irods_server_cpu_s
    feasible = cores <= params.catalog_cores and k <= params.max_connections
    return ConnectionPlan(target_rate, per_conn, k, cores, feasible, params.files / target_rate / 86400)


def predict(ranks: int, params: FieldParameters, calib: Calibration, connections: int) -> Prediction:
    rate, limit = job_rate(ranks, params, calib)
    measured_hops = calib.hop_latency_s(int(params.tree_width), params.waves_to_detect)
    walker, connected = memory_per_rank(ranks, params, calib, connections)
    return Prediction(
        ranks=ranks,
        job_rate=rate,
        limited_by=limit,
        walk_time_s=walk_time(ranks, params, calib),
        startup_s=params.startup_s,
        ramp_s=ramp_time(ranks, params, calib),
        termination_s=termination_time(ranks, params, hop_latency(params)),
        termination_s_this_machine=termination_time(ranks, params, max(measured_hops)),
        messages_per_entry_scan=messages_per_entry(ranks, params, calib),
        messages_per_entry_ingest=messages_per_entry(ranks, params, calib, connections),
        rss_walker_mb=walker,
        rss_connected_mb=connected,
    )


def plot_walk_time(path: str, params: FieldParameters, calib: Calibration,
                   capacities: list[float], ranks: tuple[int, int] = (256, 4096)) -> None:
    """Predicted time to walk ``params.files`` against ranks, one line per MDS capacity and
    one limited by the ranks alone.  Small PNG (Agg), readable in a Markdown page."""
    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = ranks
    xs = [int(round(2 ** (math.log2(lo) + i * (math.log2(hi) - math.log2(lo)) / 48))) for i in range(49)]
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=100)
    for capacity, color in zip(capacities, ("tab:red", "tab:orange", "tab:blue", "tab:green")):
        limited = dataclasses.replace(params, mds_capacity=capacity)
        ax.plot(xs, [walk_time(p, limited, calib) / 3600 for p in xs], color=color, linewidth=2.5,
                label=f"MDS capacity {capacity / 1000:,.0f} k stats/s")
    unlimited = dataclasses.replace(params, mds_capacity=math.inf)
    ax.plot(xs, [walk_time(p, unlimited, calib) / 3600 for p in xs], color="black", linestyle="--",
            linewidth=1.5, zorder=5,
            label=f"ranks only: {params.per_rank_stat_rate / 1000:.1f} k stats/s per rank, no MDS limit")
    marks = [lo * 2 ** i for i in range(int(math.log2(hi / lo)) + 1)]
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(marks, [f"{m:,}" for m in marks])
    hours = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8]
    ax.set_yticks(hours, [f"{h * 60:.0f} min" if h < 1 else f"{h:.0f} h" for h in hours])
    ax.minorticks_off()
    ax.set_ylim(0.05, 5)
    ax.set_xlabel("MPI ranks")
    ax.set_ylabel("predicted walk time (log scale)")
    ax.set_title(f"hpcingest scan: predicted time to walk {params.files:.0e} files\n"
                 f"N / min(e(P)·P·r, C) + {params.startup_s:.0f} s start-up + ramp-up + termination",
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
