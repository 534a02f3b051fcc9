#!/usr/bin/env bash
# Install (if missing) and start a one-node Slurm cluster on this machine:
# munged + slurmctld + slurmd, no systemd. Debian 12, run as root. Idempotent:
# already-running daemons are kept (restarted only if slurm.conf changed).
#
# Verify (as root, after this script):
#   srun --mpi=pmi2 -n 4 -O python -c "from mpi4py import MPI; c=MPI.COMM_WORLD; print(c.rank, c.size)"
#     -> 4 lines "<rank> 4"
#   printf '#!/bin/sh\nsrun hostname\n' >/tmp/j.sh && sbatch -n 2 -o /tmp/j.out --wait /tmp/j.sh && cat /tmp/j.out
#   As a non-root user, srun works, but the job runs as that user, so the
#   python it starts must be readable by that user (/root/.pyenv is not):
#   cd /tmp && runuser -u nobody -- srun -n 2 -O id -u
#
# Gotchas: use `srun -O` (overcommit) for more tasks than CPUs; `--oversubscribe`
# alone leaves the job pending forever. MPICH (mpich wheel) needs --mpi=pmi2
# (the default here); Open MPI 5 would need PMIx, which Debian's Slurm lacks.
set -euo pipefail

log() { echo "slurm-up: $*"; }
die() {
    echo "slurm-up: ERROR: $*" >&2
    for f in /var/log/munge/munged.log /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log; do
        [[ -f $f ]] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}
# alive PIDFILE: true if the pid in PIDFILE is a running process.
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

[[ $(id -u) -eq 0 ]] || { echo "slurm-up: must run as root" >&2; exit 1; }

# --- 1. packages ------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v srun >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurmctld slurmd slurm-client munge (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt_log=$(mktemp)
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
            slurmctld slurmd slurm-client munge; } >"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2
        die "apt-get failed"
    fi
    rm -f "$apt_log"
fi

# --- 2. slurm.conf ----------------------------------------------------------
node=$(hostname)
node=${node%%.*}   # slurmd uses the short host name
# Hardware as slurmd sees it, e.g. "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1"
hw=$(slurmd -C 2>/dev/null | head -n1 | grep -o 'CPUs=.*ThreadsPerCore=[0-9]*' || true)
[[ -n $hw ]] || hw="CPUs=$(nproc)"
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
real_mem=$(( mem_mb * 8 / 10 ))   # below the real memory, or the node drains

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
conf=/etc/slurm/slurm.conf
new=$(mktemp)
cat >"$new" <<EOF
# Written by hpcingest .ci/slurm-up.sh: one-node test cluster.
ClusterName=local
SlurmctldHost=${node}(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MpiDefault=pmi2
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=${node} NodeAddr=127.0.0.1 ${hw} RealMemory=${real_mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:64
EOF
if [[ -f $conf ]] && cmp -s "$new" "$conf"; then
    rm -f "$new"
else
    log "writing $conf (NodeName=$node $hw RealMemory=$real_mem)"
    install -m 0644 "$new" "$conf"
    rm -f "$new"
    # Daemons running with an old config: restart them below.
    for pf in /run/slurmd.pid /run/slurmctld.pid; do
        if alive "$pf"; then
            log "config changed: stopping $(basename "$pf" .pid)"
            pid=$(cat "$pf"); kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    done
fi

# --- 3. munge ---------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating munge key"
    mkdir -p /etc/munge
    mungekey --create --keyfile /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    runuser -u munge -- munged || die "munged failed to start"
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n </dev/null | unmunge >/dev/null || die "munge round trip failed"
fi

# --- 4. slurmctld, slurmd ---------------------------------------------------
if ! alive /run/slurmctld.pid; then
    log "starting slurmctld"
    slurmctld || die "slurmctld failed to start"
fi
if ! alive /run/slurmd.pid; then
    log "starting slurmd"
    slurmd || die "slurmd failed to start"
fi

# --- 5. wait for the node to be usable --------------------------------------
log "waiting for node $node to be idle"
state=""
for i in $(seq 60); do
    state=$(sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n1 || true)
    case $state in
        idle|mixed|allocated|completing)
            log "node $node is $state"
            exit 0 ;;
        down|drained|draining|drain*|down~|fail*|inval)
            # Not-responding states end in '*': keep waiting on those.
            [[ $(( i % 5 )) -eq 1 ]] && log "node is $state: resuming"
            scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
scontrol show node "$node" >&2 2>/dev/null || true
die "node $node not idle after 60 s (state: '${state:-unknown}')"
