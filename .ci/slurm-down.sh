#!/usr/bin/env bash
# Stop the one-node Slurm cluster started by .ci/slurm-up.sh (slurmd,
# slurmctld, munged), using their pid files. Leaves config, key and state.
set -euo pipefail

[[ $(id -u) -eq 0 ]] || { echo "slurm-down: must run as root" >&2; exit 1; }

for pf in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
    name=$(basename "$pf" .pid)
    if [[ -s $pf ]] && kill -0 "$(cat "$pf")" 2>/dev/null; then
        pid=$(cat "$pf")
        echo "slurm-down: stopping $name (pid $pid)"
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm-down: $name still running after 10 s; sending KILL"
            kill -9 "$pid" || true
        fi
    fi
    rm -f "$pf"
done
echo "slurm-down: done"
