#!/usr/bin/env bash
# Stop the single-node SLURM cluster of start_slurm.sh (each daemon by its pid file).
#   PURGE=1   also remove the packages (Debian's SLURM client tools without a running controller slow every
#             local `snakemake` by ~10 s: never leave them installed when the cluster is down)
set -uo pipefail
PURGE="${PURGE:-0}"
if [ "$(id -u)" != 0 ]; then echo "stop_slurm.sh: needs root" >&2; exit 2; fi
for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/slurmdbd.pid /run/mysqld/mysqld.pid /run/munge/munged.pid; do
  [ -s "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
done
# mysqld_safe (the wrapper) exits by itself once mariadbd has exited.
if [ "$PURGE" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  INSTALLED=/var/lib/ssvae-test-slurm/installed-packages
  # what start_slurm.sh installed, and the SLURM packages themselves whatever installed them
  wanted="$(cat "$INSTALLED" 2>/dev/null; echo slurmctld slurmd slurm-client slurm-wlm-basic-plugins slurmdbd munge)"
  # shellcheck disable=SC2086
  present="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $wanted 2>/dev/null | awk '$2 == "installed" {print $1}')"
  if [ -n "$present" ]; then
    # shellcheck disable=SC2086
    apt-get purge -y -qq $present >/dev/null || echo "stop_slurm.sh: apt-get purge failed" >&2
  fi
  rm -f "$INSTALLED"
  rm -rf /var/spool/slurmctld /var/spool/slurmd /run/munge /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf /var/log/slurm
  if command -v sbatch >/dev/null || command -v squeue >/dev/null || command -v scontrol >/dev/null; then
    echo "stop_slurm.sh: SLURM client tools are still installed: $(command -v sbatch squeue scontrol | tr '\n' ' ')" >&2
    exit 1
  fi
  echo "SLURM stopped and removed"
else
  echo "SLURM stopped (packages kept; PURGE=1 removes them)"
fi
