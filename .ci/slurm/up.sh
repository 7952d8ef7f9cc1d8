#!/usr/bin/env bash
# CI helper: a SLURM cluster of one node on this machine (Debian, root, no systemd, no slurmdbd), for
# tests/test_slurm.py. Writes the PIDs of the daemons it starts to $RDUSIM_SLURM_DIR (default
# /run/rdusim-slurm); .ci/slurm/down.sh stops exactly those. Safe to run twice.
#   bash .ci/slurm/up.sh && RDUSIM_SLURM=1 pytest tests/test_slurm.py; bash .ci/slurm/down.sh
set -euo pipefail
state=${RDUSIM_SLURM_DIR:-/run/rdusim-slurm}
partition=${RDUSIM_SLURM_PARTITION:-ci}
conf=/etc/slurm/slurm.conf
start=$SECONDS
say() { printf 'slurm-up [%3ss] %s\n' $((SECONDS - start)) "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "slurm-up: needs root (apt-get, daemons)" >&2; exit 1; }

need=()
for pkg in munge slurmctld slurmd slurm-client; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
    say "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$state" /var/lib/slurm/ctld /var/lib/slurm/d /var/log/slurm
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "new munge key"
    head -c 1024 /dev/urandom >/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

# The node line (CPUs, sockets, memory) as slurmd sees this machine; accounting off, so sacct does
# not work here: the profile polls with squeue, which keeps a finished job for MinJobAge seconds.
host=$(hostname -s)
node=$(slurmd -C | head -n 1)
cat >"$state/slurm.conf" <<CONF
# written by .ci/slurm/up.sh: one node, no accounting, no cgroups
ClusterName=rdusim-ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/ctld
SlurmdSpoolDir=/var/lib/slurm/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
${node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=${partition} Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
# The config goes where the SLURM tools look; what was there before is kept, and down.sh puts it back
# (a config left behind makes every `scontrol`, and so every Snakemake start with the SLURM executor
# installed, wait 9 s for a controller that is gone).
mkdir -p /etc/slurm
if ! cmp -s "$state/slurm.conf" "$conf"; then
    if [ -e "$conf" ] && [ ! -e "$state/conf-installed" ]; then cp -p "$conf" "$state/slurm.conf.before"; fi
    cp "$state/slurm.conf" "$conf"
fi
touch "$state/conf-installed"

running() {  # running NAME: the PID in $state/NAME.pid is a live process called NAME
    local pid
    pid=$(cat "$state/$1.pid" 2>/dev/null) || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

if ! running munged; then
    /usr/sbin/munged --pid-file="$state/munged.pid" --force
    for _ in $(seq 50); do running munged && break; sleep 0.1; done
    chmod 0644 "$state/munged.pid" 2>/dev/null || true
fi
running munged || { echo "slurm-up: munged did not start" >&2; exit 1; }
munge -n | unmunge >/dev/null
say "munged $(cat "$state/munged.pid")"

for daemon in slurmctld slurmd; do
    if ! running "$daemon"; then
        rm -f "$state/$daemon.pid"
        "$daemon"
        for _ in $(seq 100); do running "$daemon" && break; sleep 0.1; done
    fi
    running "$daemon" || { echo "slurm-up: $daemon did not start:" >&2; tail -n 20 "/var/log/slurm/$daemon.log" >&2; exit 1; }
    say "$daemon $(cat "$state/$daemon.pid")"
done

for _ in $(seq 60); do
    case $(sinfo -h -N -n "$host" -o %t 2>/dev/null) in idle | mix | alloc) say "node $host up, partition $partition"; exit 0 ;; esac
    sleep 1
done
echo "slurm-up: node $host did not come up" >&2
scontrol show node "$host" >&2 || true
exit 1
