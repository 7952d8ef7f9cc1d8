#!/usr/bin/env bash
# CI helper: stop the daemons that .ci/slurm/up.sh started, by the PIDs it wrote, each only while
# that PID still runs the daemon of that name (never by name), and put back the SLURM config it replaced
# (or remove the one it wrote).
set -uo pipefail
state=${RDUSIM_SLURM_DIR:-/run/rdusim-slurm}
for daemon in slurmd slurmctld munged; do   # compute node, controller, then authentication
    pidfile="$state/$daemon.pid"
    pid=$(cat "$pidfile" 2>/dev/null) || { echo "slurm-down: $daemon was not started here"; continue; }
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$daemon" ]; then
        kill "$pid"
        for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
        [ -e "/proc/$pid" ] && kill -9 "$pid"
        echo "slurm-down: stopped $daemon ($pid)"
    else
        echo "slurm-down: $daemon ($pid) had already stopped"
    fi
    rm -f "$pidfile"
done
if [ -e "$state/conf-installed" ]; then
    if [ -e "$state/slurm.conf.before" ]; then
        mv "$state/slurm.conf.before" /etc/slurm/slurm.conf
        echo "slurm-down: restored the earlier /etc/slurm/slurm.conf"
    else
        rm -f /etc/slurm/slurm.conf
        echo "slurm-down: removed /etc/slurm/slurm.conf (up.sh wrote it)"
    fi
    rm -f "$state/conf-installed"
fi
