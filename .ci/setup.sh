#!/usr/bin/env bash
# Everything hpcingest's tests and quick start need, on a fresh Debian 12 machine:
# system packages, a virtual environment with hpcingest[mpich,plot,test,serve], a second one with the
# lowest python-irodsclient hpcingest supports (for the tests of what uses its internals), and
# (as root) a one-node Slurm cluster.  Idempotent; used by CI (.ci/run) and by developers.
#
# The venv is built from Debian's /usr/bin/python3 under /opt when run as root, so
# that tests can also run ranks as an unprivileged user (who cannot read /root).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [[ $(id -u) -eq 0 ]]; then
    venv=${HPCINGEST_VENV:-/opt/hpcingest-venv}
    need=()
    # fuse3, libfuse3-dev, gcc, pkg-config: latfs, the benchmarks' FUSE filesystem (benchmarks/latfs)
    for pkg in python3-venv python3-dev findutils util-linux chromium chromium-driver fuse3 libfuse3-dev gcc pkg-config; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    if ((${#need[@]})); then
        echo "setup: apt-get install ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    fi
else
    venv=${HPCINGEST_VENV:-$here/.venv}
fi
python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3)
if [[ ! -x $venv/bin/python ]]; then
    echo "setup: creating $venv"
    "$python" -m venv "$venv"
fi
quiet_pip() {
    "$1/bin/pip" install -q --disable-pip-version-check "${@:2}" 2>&1 | grep -v -e '^WARNING: Location' -e 'Running pip as' || true
}
echo "setup: pip install -e $here[mpich,plot,test,serve]"
quiet_pip "$venv" -e "$here[mpich,plot,test,serve]"
"$venv/bin/python" -c "import hpcingest, mpi4py, irods, boto3, numpy, matplotlib, prometheus_client, aiohttp, yaml" \
    || { echo "setup: the venv at $venv is incomplete" >&2; exit 1; }
# The lowest python-irodsclient of setup.py's range, beside the newest in the main venv
prc_lowest=$(sed -n 's/.*"python-irodsclient>=\([0-9.]*\),.*/\1/p' "$here/setup.py")
lowest_venv=${venv}-prc-lowest
if [[ ! -x $lowest_venv/bin/python ]]; then
    echo "setup: creating $lowest_venv"
    "$python" -m venv "$lowest_venv"
fi
echo "setup: pip install -e $here python-irodsclient==$prc_lowest into $lowest_venv"
quiet_pip "$lowest_venv" -e "$here" "python-irodsclient==$prc_lowest" pytest cryptography
"$lowest_venv/bin/python" -c "import irods, sys; from irods.version import __version__ as v; sys.exit(v != '$prc_lowest')" \
    || { echo "setup: the venv at $lowest_venv lacks python-irodsclient $prc_lowest" >&2; exit 1; }
if [[ $(id -u) -eq 0 ]]; then
    bash "$here/.ci/slurm-up.sh"
fi
echo "setup: done; use $venv/bin/hpcingest and $venv/bin/python"
