"""Capacity of the built-in iRODS test zone: registers and small puts per second from 1, 4 and 16
concurrent python-irodsclient processes, with the zone in its own process and --latency-ms 0.

Workloads (each client process has its own session and its own target collection):
  register    data_objects.register(path, logical, dataSize=…, dataModify=…)  -- 1 API request
  put-inline  DATA_OBJ_PUT (606) with a 4 KiB file carried in the request     -- 1 API request
  put-prc     data_objects.put() of a 4 KiB file (PRC's open/seek/write/close) -- ~7 API requests

Usage: PYTHONPATH=. python benchmarks/zone_capacity.py [--seconds 3] [--clients 1,4,16]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hpcingest.zone.testing import start_zone  # noqa: E402

FILE_SIZE = 4096


def _session(conn_info):
    from irods.session import iRODSSession

    host, port, zone, user, password = conn_info
    return iRODSSession(host=host, port=port, user=user, password=password, zone=zone)


def _inline_put(sess, logical: str, data: bytes) -> None:
    from irods.message import FileOpenRequest, StringStringMap, iRODSMessage

    body = FileOpenRequest(objPath=logical, createMode=0o644, openFlags=0, offset=0, dataSize=len(data),
                           numThreads=0, oprType=1, KeyValPair_PI=StringStringMap({"dataIncluded": ""}))
    with sess.pool.get_connection() as conn:
        conn.send(iRODSMessage("RODS_API_REQ", msg=body, int_info=606, bs=data))
        conn.recv()


def _client(conn_info, workload: str, index: int, collection: str, local_file: str, seconds: float,
            barrier, results) -> None:
    with _session(conn_info) as sess:
        target = f"{collection}/{workload}_c{index}"
        sess.collections.create(target)
        data = open(local_file, "rb").read()
        sess.collections.get(target)  # connection is up and authenticated before timing starts
        barrier.wait()
        start = time.perf_counter()
        deadline = start + seconds
        done = 0
        while time.perf_counter() < deadline:
            logical = f"{target}/o{done}"
            if workload == "register":
                sess.data_objects.register(local_file, logical, dataSize=str(FILE_SIZE), dataModify="1700000000")
            elif workload == "put-inline":
                _inline_put(sess, logical, data)
            else:
                sess.data_objects.put(local_file, logical)
            done += 1
        results.put((done, time.perf_counter() - start))


def run(workload: str, clients: int, seconds: float, conn_info, collection: str, local_file: str) -> float:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(clients)
    results = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(conn_info, workload, i, collection, local_file, seconds, barrier,
                                               results)) for i in range(clients)]
    for proc in procs:
        proc.start()
    outcomes = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode:
            raise RuntimeError(f"a client failed (exit {proc.exitcode})")
    return sum(done for done, _ in outcomes) / max(elapsed for _, elapsed in outcomes)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per workload and client count")
    parser.add_argument("--clients", default="1,4,16", help="comma-separated client process counts")
    parser.add_argument("--workloads", default="register,put-inline,put-prc")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]
    workloads = args.workloads.split(",")
    with tempfile.TemporaryDirectory(prefix="zone-capacity-") as tmp:
        local_file = os.path.join(tmp, "payload.bin")
        with open(local_file, "wb") as out:
            out.write(os.urandom(FILE_SIZE))
        zone = start_zone(os.path.join(tmp, "zone"), subprocess_mode=True, latency_ms=0)
        try:
            conn_info = (zone.host, zone.port, zone.zone, zone.user, zone.password)
            print(f"zone pid {zone.pid} on port {zone.port}; cpus {os.cpu_count()}; "
                  f"{args.seconds:g} s per measurement")
            print(f"{'workload':<12}{'clients':>8}{'req/s':>12}{'x vs 1':>9}")
            for workload in workloads:
                base = None
                for n in counts:
                    collection = f"{zone.home}/bench_{workload}_{n}"
                    with _session(conn_info) as sess:
                        sess.collections.create(collection)
                    rate = run(workload, n, args.seconds, conn_info, collection, local_file)
                    base = base or rate
                    print(f"{workload:<12}{n:>8}{rate:>12.0f}{rate / base:>9.2f}", flush=True)
            stats = zone.api_stats()
            for number in ("630", "606", "602", "702"):
                if number in stats and stats[number]["count"]:
                    entry = stats[number]
                    print(f"server time per {entry['name']}: {1e6 * entry['total_seconds'] / entry['count']:.0f} us "
                          f"over {entry['count']} requests")
        finally:
            zone.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
