"""A small, generic work-stealing engine over MPI (libcircle's two-callback model).

The engine moves opaque work items (``bytes``) between ranks and decides when all work
is done.  It knows nothing about filesystems or iRODS: callers give it the initial items
and one ``process(item, ctx)`` callback that may ``ctx.push()`` more items.

Design choices, and why:

* Each rank pops its own work LIFO (depth first keeps the queue short) and gives stolen
  work from the FIFO end: the oldest items are nearest the root and carry the most work.
* A rank has at most one steal request in flight, to a random victim, preferring ranks on
  its own node for the first attempts (cheap shared-memory transfers).  It asks once its
  queue is empty (``low_water``).
* A victim splits its queue equally between itself and every requester seen in the same
  poll round (libcircle's SPLIT_EQUAL), but gives at most a small bite (two items) per reply.
  Spreading work is the callers' job (``push_to``: sources hand out listings and deal large
  directories round robin); stealing evens out the rest.  Half a queue per steal, and asking
  before running dry, moved a quarter of all entries between ranks at 64 ranks on 2 cores,
  to whichever ranks the scheduler happened to favour: max/mean entries per rank 1.23 against
  1.13 with bites (skewed tree, 64 ranks, median of 5).
* Work travels as one packed buffer (count, lengths, concatenated bytes), never pickled.
* Termination uses counting waves over a k-ary tree (Mattern's four-counter method): each
  wave sums the work messages sent and received, read at every rank while it is passive;
  the job has ended when one wave's received count equals the next wave's sent count.  It
  tolerates work messages in flight, needs no per-transfer acknowledgements, and takes
  O(log_k P) hops per wave instead of a ring's P (a ring of 64 oversubscribed ranks took
  over a second to notice the end).
* Idle ranks back off (spin, then ``sleep(0)``, then growing sleeps capped at 5 ms, or 1 ms
  when the rank serves others) so oversubscribed ranks do not starve the ones that still
  have work.  With more ranks on a node than it has CPUs the caps grow in proportion (up to
  20 ms): 112 idle ranks polling every millisecond on 2 cores took the CPU from the 16 that
  ingested, and 128 ranks registered a tree 4.5x slower than 4 (benchmarks/RESULTS.md, "Many ranks").
* A sleeping rank wakes when a message that wants an answer soon is for it (work, waves,
  STOP, the closing round, services), through a doorbell on its node (hpcingest.doorbell):
  each hop of a termination wave otherwise waited out the receiver's sleep, and at 256 ranks
  on two cores learning that the walk was over took 1.6 s.  Steal requests and empty replies
  do not ring: idle ranks would wake each other into a storm of requests.  A look probes until
  two probes in a row find nothing: MPICH's Improbe that matches nothing takes what has arrived
  into its queue and still answers "nothing", so a woken rank that probed once missed the
  message that rang and slept its full time again, one sleep per hop of every wave.
* The walk ends with one round over the same tree, up and down, in the engine's own messages:
  it drains what is in flight, carries each rank's closing integers to every rank and its
  report to rank 0 (``run(closing=...)``).  MPI's collectives progress only while every rank
  is scheduled and looking; two of them after the walk took 2 s at 256 ranks on two cores.
* Long callbacks call ``ctx.poll()`` (``push()`` does so periodically) so a rank that is
  listing a million-entry directory still hands out the batches it has produced.
"""

from __future__ import annotations

import random
import threading
import struct
import time
from array import array
from collections import deque
from itertools import accumulate
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

from hpcingest import collectives, doorbell
from hpcingest.collectives import Backoff
from hpcingest.launch import mpi_of
from hpcingest.profile import recorder

TAG_REQUEST = 7001
TAG_WORK = 7002
TAG_WAVE_DOWN = 7003
TAG_WAVE_UP = 7005
TAG_STOP = 7004
TAG_PLACED = 7006
TAG_CLOSE_UP = 7007
TAG_CLOSE_DOWN = 7008

MAX_POLL_S = 0.02  # the longest an idle or waiting rank sleeps between looks at its messages

_COUNT = struct.Struct("<I")
_WAVE = struct.Struct("<qqq")  # wave number, work messages sent, work messages received
_RANK = struct.Struct("<q")
_EMPTY = b""


def pack_items(items: list[bytes]) -> bytes:
    """One buffer for many items (a count, the lengths, the bytes): why not pickle -- this is
    several times cheaper and safe to read from another rank."""
    count = len(items)
    return struct.pack(f"<I{count}I", count, *map(len, items)) + b"".join(items)


def unpack_items(buf: bytes | bytearray | memoryview) -> list[bytes]:
    data = bytes(buf)
    (count,) = _COUNT.unpack_from(data, 0)
    ends = list(accumulate(struct.unpack_from(f"<{count}I", data, _COUNT.size), initial=_COUNT.size + 4 * count))
    return [data[start:end] for start, end in zip(ends, ends[1:])]


class WorkContext(Protocol):
    """What a process callback may do while it runs."""

    rank: int
    size: int

    def push(self, item: bytes) -> None: ...

    def push_local(self, item: bytes, first: bool = False) -> None: ...

    def push_to(self, rank: int, *items: bytes) -> None: ...

    def queued(self) -> int: ...

    def poll(self) -> None: ...

    def send(self, payload: bytes, dest: int, tag: int) -> None: ...

    def wait_until(self, done: Callable[[], bool]) -> None: ...

    def throttle(self, units: int) -> None: ...

    def request_stop(self) -> None: ...

    throttling: bool


class EngineAborted(BaseException):
    """The run was aborted from another thread (a peer rank was lost): raised wherever this
    rank waits, so it can unwind instead of waiting for a rank that will never answer.  A
    BaseException, so that callbacks' ``except Exception`` never mistake it for their own."""


ProcessFn = Callable[[bytes, WorkContext], None]
ServiceFn = Callable[[bytes, int, "WorkStealingEngine"], None]  # (payload, source rank, engine)

FIRST_SERVICE_TAG = 7100  # tags from here on belong to services registered by callers


@dataclass
class Closing:
    """A rank's part of the round that ends the walk (``run(closing=...)``)."""

    shared: Sequence[int] = ()  # integers every rank receives from every rank (the same count on each)
    report: bytes = b""  # bytes rank 0 receives from every rank


@dataclass
class EngineStats:
    """Per-rank counters; the caller reduces them across ranks for its summary."""

    items_processed: int = 0
    steal_requests: int = 0
    steals_succeeded: int = 0
    items_received: int = 0
    items_given: int = 0
    termination_waves: int = 0
    busy_s: float = 0.0
    idle_s: float = 0.0
    last_item_end: float = 0.0  # wall clock (time.time) when this rank finished its last item
    stop_seen: float = 0.0  # wall clock when this rank learnt that all work is done
    items_abandoned: int = 0  # dropped after request_stop()
    throttled_s: float = 0.0  # waited in throttle() to hold the rate limit
    closing: list[list[int]] | None = None  # every rank's ``Closing.shared``, in rank order (run())
    reports: list[bytes] | None = None  # on rank 0: every rank's ``Closing.report``, in rank order (run())
    doorbell: bool = False  # this rank slept on a doorbell (hpcingest.doorbell), woken by messages for it


class WorkStealingEngine:
    """Runs ``process`` over every item until no rank has work and none is in flight."""

    def __init__(
        self,
        comm,
        process: ProcessFn,
        *,
        poll_interval_s: float = 0.002,
        max_items_per_reply: int = 2,
        max_bytes_per_reply: int = 1 << 20,
        near_attempts: int = 2,
        tree_width: int = 8,
        low_water: int = 0,
        services: dict[int, ServiceFn] | None = None,
        stop: "threading.Event | None" = None,
        rate_limit: float | None = None,
        on_idle: "Callable[[WorkContext], None] | None" = None,
        abort: "threading.Event | None" = None,
    ) -> None:
        MPI = self._mpi = mpi_of(comm)
        self.comm = collectives.dup(comm)
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self._process = process
        self._services = dict(services or {})
        if any(tag < FIRST_SERVICE_TAG for tag in self._services):
            raise ValueError(f"service tags must be >= {FIRST_SERVICE_TAG}")
        self._poll_interval = poll_interval_s
        self._max_items = max_items_per_reply
        self._max_bytes = max_bytes_per_reply
        self._near_attempts = near_attempts
        self._low_water = low_water
        self._queue: deque[bytes] = deque()
        self._pinned: deque[bytes] = deque()
        self._abandon = False
        self._stop_event = stop  # set from another thread: abandon the remaining work
        self._abort_event = abort  # set from another thread: raise EngineAborted wherever this rank waits
        # called whenever this rank runs out of work, before it may count as passive: where
        # callers flush messages they hold back to send many in one
        self._on_idle = on_idle
        self._rng = random.Random(0x5EED + 7919 * self.rank)
        serial = doorbell.next_serial()
        neighbours = collectives.node_neighbours(self.comm, serial) if self.size > 1 else {}
        peers = sorted(neighbours)
        self._near = [] if len(peers) == self.size - 1 else peers  # one node: "near" means everyone
        self._bell = doorbell.Doorbell(serial, {r: doorbell.address(pid, s) for r, (pid, s) in neighbours.items()})
        # ranks per CPU on this node: an idle or waiting rank polls this much less often
        self._pace = collectives.oversubscription(len(peers) + 1)
        self._pending_sends: list = []
        self._status = MPI.Status()
        self._last_poll = 0.0
        self._pushes = 0
        self._in_process = False
        # termination waves (four-counter method) over a k-ary tree rooted at rank 0
        self._sent = 0  # work messages sent
        self._received = 0  # work messages received
        self._parent = (self.rank - 1) // tree_width
        self._tree_width = tree_width
        self._children = self._children_of(self.rank)
        self._wave = 0  # the wave this rank is taking part in (0: none yet)
        self._wave_open = False  # a wave reached this rank and it has not reported yet
        self._wave_reports: list[tuple[int, int]] = []
        self._close_parts: list[bytes] = []  # the closing round: records from this rank's subtree
        self._close_down: bytes | None = None  # the closing round: every rank's integers, from the parent
        self._previous_wave_received: int | None = None
        # stealing state
        self._victim: int | None = None
        self._misses = 0
        self._stop = False
        self.stats = EngineStats()
        self.stats.doorbell = self._bell.installed
        # token bucket for throttle(): this rank's share of a job-wide rate limit
        self._rate = rate_limit if rate_limit and rate_limit > 0 else None
        self.throttling = self._rate is not None  # callers then throttle finely (per stat, not per batch)
        self._tokens = 0.0
        self._token_time = time.monotonic()
        self._burst = max(1.0, (self._rate or 0.0) * 0.05)  # at most 50 ms of work ahead of the rate
        self._throttled_once = False

    # -- the callback API -------------------------------------------------------------
    def push(self, item: bytes) -> None:
        self._queue.append(item)
        self._pushes += 1
        if self._pushes & 31 == 0:
            self.poll()

    def push_to(self, rank: int, *items: bytes) -> None:
        """Work better done on ``rank`` (e.g. where the state it needs lives, or a share of a
        large listing); it lands in that rank's queue, stealable there like any other.  Several
        items travel in one message."""
        if rank == self.rank or self.size == 1:
            for item in items:
                self.push(item)
            return
        self._sent += 1
        self._send(pack_items(list(items)), rank, TAG_PLACED)

    def poll(self) -> None:
        """Serve steal requests from inside a long callback, at most every poll interval."""
        if self.size == 1:
            return
        now = time.monotonic()
        if now - self._last_poll >= self._poll_interval:
            self._last_poll = now
            self._handle_messages()

    def push_local(self, item: bytes, first: bool = False) -> None:
        """Work that must run on this rank (it is never stolen), e.g. a batch sent here
        because this rank holds an iRODS connection.  Runs before stealable work, in the order
        pushed; ``first`` puts it ahead of the others (another rank waits for it)."""
        if first:
            self._pinned.appendleft(item)
        else:
            self._pinned.append(item)

    def request_stop(self) -> None:
        """Abandon the remaining work (e.g. `hpcingest stop`): the item being processed
        finishes, queued and arriving work is dropped, and the usual termination detection
        ends the run once every rank has done the same.  Safe to call from another thread."""
        self._abandon = True

    def _stopping(self) -> bool:
        """Whether a stop was asked for (request_stop, or the stop event another thread sets)."""
        return self._abandon or (self._stop_event is not None and self._stop_event.is_set())

    def queued(self) -> int:
        return len(self._queue) + len(self._pinned)

    def send(self, payload: bytes, dest: int, tag: int) -> None:
        """A message to a service on ``dest``; counted like work, so the job cannot end
        while one is in flight.  Sending to yourself calls the service directly."""
        if tag not in self._services:
            raise ValueError(f"no service registered for tag {tag}")
        if dest == self.rank:
            self._services[tag](payload, dest, self)
            return
        self._sent += 1
        self._send(payload, dest, tag)

    def wait_until(self, done: Callable[[], bool]) -> None:
        """Keep serving steals and services until ``done()``: how a callback waits for a
        reply without deadlocking against a rank that is waiting for it.  Polls at least
        every 100 us (times the ranks per CPU of an oversubscribed node): a reply is expected
        soon, and this rank may own what others wait for."""
        backoff = self._backoff(min(MAX_POLL_S, 1e-4 * self._pace))
        while not done():
            if self.size > 1:
                self._handle_messages()
                self._complete_sends()
            backoff.pause()

    def throttle(self, units: int) -> None:
        """Spend ``units`` (e.g. stats) of this rank's share of the job's rate limit, waiting
        when it is used up: how a large job keeps off a shared metadata server's back.  The
        wait sleeps in short steps and keeps answering steal requests and services."""
        if self._rate is None:
            return
        now = time.monotonic()
        if not self._throttled_once:
            # start each rank at a random point of its first period: ranks that all begin at
            # once would otherwise stay in step and hit the metadata server in bursts
            self._throttled_once = True
            self._tokens -= self._rng.random() * units
        self._tokens = min(self._burst, self._tokens + (now - self._token_time) * self._rate) - units
        self._token_time = now
        if self._tokens >= 0:
            return
        deadline = now - self._tokens / self._rate
        with recorder.current.span("throttle"):  # a stop need not wait for the rate (--max_rate 1: a minute)
            while (left := deadline - time.monotonic()) > 0 and not self._stopping():
                self.poll()
                time.sleep(min(left, 0.002))
        self.stats.throttled_s += time.monotonic() - now

    # -- main loop ----------------------------------------------------------------------
    def run(self, initial_items: Iterable[bytes] = (),
            closing: "Callable[[EngineStats], Closing] | None" = None) -> EngineStats:
        """Process until the whole job has no work; returns this rank's stats.

        ``closing``, called once this rank's part is over, returns what the round ending the
        walk carries: its ``shared`` integers to every rank (``stats.closing``), its
        ``report`` to rank 0 (``stats.reports``).  A caller that needs a collective right
        after the walk (sizes, offsets, a summary) gets it without another round, each of
        which waits for the last rank to be scheduled (about a second at 256 ranks on two
        cores)."""
        try:
            return self._run(initial_items, closing)
        finally:
            self._bell.close()

    def _backoff(self, cap_s: float) -> Backoff:
        return Backoff(cap_s=cap_s, sleep=self._bell.sleep)

    def _run(self, initial_items: Iterable[bytes],
             closing: "Callable[[EngineStats], Closing] | None") -> EngineStats:
        self._queue.extend(initial_items)
        # an idle rank that serves others (services) must wake up often enough to answer them
        backoff = self._backoff(min(MAX_POLL_S, (1e-3 if self._services else 5e-3) * self._pace))
        idle_since: float | None = None
        activity: str | None = None  # "idle" in the profile while this rank has no work
        while True:
            if self.size > 1:
                self._handle_messages()
                self._complete_sends()
            if self._stop_event is not None and self._stop_event.is_set():
                self._abandon = True
            if self._abandon and (self._queue or self._pinned):
                self.stats.items_abandoned += len(self._queue) + len(self._pinned)
                self._queue.clear()
                self._pinned.clear()
            if self._queue or self._pinned:
                if idle_since is not None:
                    self.stats.idle_s += time.monotonic() - idle_since
                    idle_since = None
                if activity is not None:
                    recorder.current.switch(activity := None)
                backoff.reset()
                if self._pinned:
                    self._run_one(self._pinned.popleft())
                    continue
                if self.size > 1 and self._victim is None and len(self._queue) <= self._low_water:
                    self._request_work()  # ask before running dry: the reply arrives while we work
                self._run_one(self._queue.pop())
                continue
            if self._on_idle is not None and not self._stop:
                self._on_idle(self)
                if self._queue or self._pinned:
                    continue
            if self.size == 1 or self._stop:
                self.stats.stop_seen = time.time()
                break
            if idle_since is None:
                idle_since = time.monotonic()
            self._advance_wave()
            if self._stop:
                self.stats.stop_seen = time.time()
                break
            if self._victim is None:
                self._request_work()
            if activity is None:
                recorder.current.switch(activity := "idle")
            backoff.pause()
        if activity is not None:
            recorder.current.switch(None)
        if idle_since is not None:
            self.stats.idle_s += time.monotonic() - idle_since
        if self.size > 1:
            self._drain(closing(self.stats) if closing is not None else Closing())
        elif closing is not None:
            part = closing(self.stats)
            self.stats.closing, self.stats.reports = [list(part.shared)], [part.report]
        self.comm.Free()
        return self.stats

    def _run_one(self, item: bytes) -> None:
        t0 = time.monotonic()
        self._in_process = True
        try:
            self._process(item, self)
        finally:
            self._in_process = False
        self.stats.busy_s += time.monotonic() - t0
        self.stats.items_processed += 1
        self.stats.last_item_end = time.time()

    # -- messages -----------------------------------------------------------------------
    def _handle_messages(self) -> None:
        """Every wait of a rank with peers comes through here (the main loop, ``poll``,
        ``wait_until``, ``throttle``, the final drain): so this is where an abort is noticed."""
        if self._abort_event is not None and self._abort_event.is_set():
            raise EngineAborted("the run was aborted")
        MPI = self._mpi
        requesters: list[int] = []
        status = self._status
        misses = 0
        while True:
            msg = self.comm.Improbe(MPI.ANY_SOURCE, MPI.ANY_TAG, status)
            if msg is None:
                # nothing twice in a row: MPICH's first miss may only have taken in what had
                # arrived (the module's docstring, doorbells)
                misses += 1
                if misses == 2:
                    break
                continue
            misses = 0
            source, tag = status.Get_source(), status.Get_tag()
            buf = bytearray(status.Get_count(MPI.BYTE))
            msg.Recv([buf, MPI.BYTE])
            if tag == TAG_REQUEST:
                requesters.append(source)
            elif tag == TAG_WORK:
                with recorder.current.span("steal"):
                    self._receive_work(buf)
            elif tag == TAG_WAVE_DOWN:
                self._join_wave(_WAVE.unpack(buf)[0])
            elif tag == TAG_WAVE_UP:
                _, sent, received = _WAVE.unpack(buf)
                self._wave_reports.append((sent, received))
            elif tag == TAG_PLACED:
                self._received += 1
                self._queue.extend(unpack_items(buf))
            elif tag == TAG_STOP:
                self._stop = True
                self._forward_stop()
            elif tag == TAG_CLOSE_UP:
                self._close_parts.extend(unpack_items(buf))
            elif tag == TAG_CLOSE_DOWN:
                self._close_down = bytes(buf)
            elif tag in self._services:
                self._received += 1
                self._services[tag](bytes(buf), source, self)
            else:
                raise RuntimeError(f"message with unknown tag {tag} from rank {source}")
        if requesters:
            with recorder.current.span("steal"):
                self._give_work(requesters)

    def _send(self, payload: bytes, dest: int, tag: int) -> None:
        req = self.comm.Isend([payload, self._mpi.BYTE], dest, tag)
        self._pending_sends.append((req, payload))
        if tag != TAG_REQUEST and (payload or tag != TAG_WORK or self._stop):
            # wanted soon; a steal request or a refusal can wait for a look (until the walk is
            # over, when the last refusals hold up the closing round)
            self._bell.ring(dest)

    def _complete_sends(self) -> None:
        if self._pending_sends:
            self._pending_sends = [(r, p) for r, p in self._pending_sends if not r.Test()]

    def _give_work(self, requesters: list[int]) -> None:
        # An equal share for every requester and for this rank; a single item is never
        # handed over, or a serial chain of work would bounce between ranks.
        share = len(self._queue) // (len(requesters) + 1)
        for dest in requesters:
            batch: list[bytes] = []
            size = 0
            while self._queue and len(batch) < min(share, self._max_items) and size < self._max_bytes:
                item = self._queue.popleft()
                batch.append(item)
                size += len(item)
            if batch:
                self._sent += 1
                self.stats.items_given += len(batch)
                self._send(pack_items(batch), dest, TAG_WORK)
            else:
                self._send(_EMPTY, dest, TAG_WORK)

    def _receive_work(self, buf: bytearray) -> None:
        self._victim = None
        if not buf:
            self._misses += 1
            return
        items = unpack_items(buf)
        self._received += 1
        self._misses = 0
        self.stats.steals_succeeded += 1
        self.stats.items_received += len(items)
        self._queue.extend(items)

    def _request_work(self) -> None:
        if self._near and self._misses < self._near_attempts:
            victim = self._rng.choice(self._near)
        else:
            victim = self._rng.randrange(self.size - 1)
            if victim >= self.rank:
                victim += 1
        self._victim = victim
        self.stats.steal_requests += 1
        self._send(_EMPTY, victim, TAG_REQUEST)

    # -- termination (four-counter waves over a tree) -------------------------------------
    def _join_wave(self, wave: int) -> None:
        """A wave reaches this rank: pass it down at once, report up once passive."""
        self._wave = wave
        self._wave_open = True
        self._wave_reports = []
        for child in self._children:
            self._send(_WAVE.pack(wave, 0, 0), child, TAG_WAVE_DOWN)

    def _advance_wave(self) -> None:
        """Called only while this rank is passive (empty queue, not processing).

        Counters are read here, while passive, as the method requires: if the received
        total of one wave equals the sent total of the next, no work message was in flight
        and no rank was woken after its report, so every rank has been idle since.
        """
        if self.rank == 0 and not self._wave_open:
            self.stats.termination_waves += 1
            self._join_wave(self._wave + 1)
        if not self._wave_open or len(self._wave_reports) < len(self._children):
            return
        sent = self._sent + sum(s for s, _ in self._wave_reports)
        received = self._received + sum(r for _, r in self._wave_reports)
        self._wave_open = False
        if self.rank != 0:
            self._send(_WAVE.pack(self._wave, sent, received), self._parent, TAG_WAVE_UP)
            return
        if self._previous_wave_received == sent and sent == received:
            self._stop = True
            self._forward_stop()
            return
        self._previous_wave_received = received

    def _forward_stop(self) -> None:
        for child in self._children:
            self._send(_EMPTY, child, TAG_STOP)

    def _drain(self, part: Closing) -> None:
        """The round that ends the walk: consume every control message still in flight, so
        nothing outlives the engine, and carry ``part`` (see ``run``).

        After termination only steal requests and their (empty) replies can be in flight (the
        last wave has been reported up in full, and STOP reaches every rank).  Each rank waits
        for the reply to its own request and for its children's parts, then sends its
        subtree's parts to its parent; rank 0, holding every part, sends every rank's integers
        down the tree.  A rank reports up only once its own request is answered, so when rank 0
        has every part no request is unanswered; every rank keeps answering requests until the
        integers come down.  One hop is a message to a rank on its doorbell, not a collective
        that waits for every rank to be scheduled in turn.
        """
        backoff = self._backoff(min(MAX_POLL_S, 5e-3 * self._pace))
        width = len(part.shared)
        own = _RANK.pack(self.rank) + array("q", part.shared).tobytes() + part.report
        self._close_parts.append(own)
        subtree = self._subtree_size()
        while self._victim is not None or len(self._close_parts) < subtree:
            self._handle_messages()
            self._complete_sends()
            backoff.pause()
        if self.rank == 0:
            parts = sorted(self._close_parts, key=lambda record: _RANK.unpack_from(record)[0])
            every = b"".join(record[_RANK.size:_RANK.size + 8 * width] for record in parts)
            self.stats.reports = [record[_RANK.size + 8 * width:] for record in parts]
        else:
            self._send(pack_items(self._close_parts), self._parent, TAG_CLOSE_UP)
            while self._close_down is None:
                self._handle_messages()
                self._complete_sends()
                backoff.pause()
            every = self._close_down
        for child in self._children:
            self._send(every, child, TAG_CLOSE_DOWN)
        while self._pending_sends:
            self._complete_sends()
            if self._pending_sends:
                backoff.pause()
        integers = array("q", every)
        self.stats.closing = [list(integers[r * width:(r + 1) * width]) for r in range(self.size)]
        if self._queue or self._pinned:
            raise RuntimeError("work-stealing engine terminated with work still queued")

    def _children_of(self, rank: int) -> list[int]:
        """``rank``'s children in the k-ary tree rooted at rank 0 that waves and the closing round travel."""
        first = self._tree_width * rank + 1
        return [c for c in range(first, first + self._tree_width) if c < self.size]

    def _subtree_size(self) -> int:
        """Ranks in the subtree rooted at this rank (itself included): the parts it waits for."""
        count, level = 0, [self.rank]
        while level:
            count += len(level)
            level = [c for r in level for c in self._children_of(r)]
        return count
