#!/usr/bin/env bash
# Start a single-node SLURM cluster on localhost (Debian 12's SLURM 22.05, munge), without systemd or cgroups.
# Run as root. Stop it with stop_slurm.sh (PURGE=1 also removes the packages again).
#   INSTALL=0     skip apt-get (packages already there)
#   WITH_DBD=1    also start MariaDB + slurmdbd, so that `sacct` (accounting) works
#   PARTITION=ci  name of the node's partition; it is not the default partition, so every job must name it
#                 (as a user's own profile does on a real cluster)
# Installed client tools without a running controller slow every local `snakemake` by ~10 s: when this script
# fails after installing, it purges them again.
set -euo pipefail
WITH_DBD="${WITH_DBD:-0}"
INSTALL="${INSTALL:-1}"
PARTITION="${PARTITION:-ci}"
HERE="$(cd "$(dirname "$0")" && pwd)"
INSTALLED=/var/lib/ssvae-test-slurm/installed-packages
PACKAGES="slurmctld slurmd slurm-client munge"
[ "$WITH_DBD" = 1 ] && PACKAGES="$PACKAGES slurmdbd mariadb-server"

if [ "$(id -u)" != 0 ]; then echo "start_slurm.sh: needs root" >&2; exit 2; fi

if [ "$INSTALL" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Remember exactly which packages this installs, so that stop_slurm.sh PURGE=1 removes those and no others.
  mkdir -p "$(dirname "$INSTALLED")"
  before="$(mktemp)"
  dpkg-query -W -f='${Package}\n' | sort > "$before"
  # exit 3: apt cannot get the packages here (no mirror reachable); the tests then skip instead of failing
  apt-get update -qq || { rm -f "$before"; exit 3; }
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null || {
    dpkg-query -W -f='${Package}\n' | sort | comm -13 "$before" - >> "$INSTALLED"; rm -f "$before"
    PURGE=1 "$HERE/stop_slurm.sh" >&2 || true; exit 3; }
  dpkg-query -W -f='${Package}\n' | sort | comm -13 "$before" - >> "$INSTALLED"
  rm -f "$before"
  trap 'echo "start_slurm.sh: failed; removing the packages again" >&2; PURGE=1 "$HERE/stop_slurm.sh" >&2 || true' ERR
fi

# --- munge -----------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then          # Debian's postinst normally creates it
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
munge -n | unmunge >/dev/null                    # sanity check

# --- slurm.conf ------------------------------------------------------------
# The node as slurmd sees it, e.g. "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
HW="$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //')"
if [ "$WITH_DBD" = 1 ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
# MinJobAge >= 3x the status poll interval, or the plugin quietly falls back from squeue to sacct; long enough
# that a timed-out first attempt is still known while its retry trains on a busy machine.
# EnforcePartLimits=ALL: a job larger than the node is rejected at once instead of pending forever.
# DefMemPerCPU: without a memory request a job would get the whole node's memory, and jobs would run one at a time.
# KillWait: seconds between SIGTERM and SIGKILL at the time limit (the train job checkpoints on SIGTERM).
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=1800
KillWait=10
DefMemPerCPU=512
EnforcePartLimits=ALL
JobCompType=jobcomp/none
$ACCT
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 $HW State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=NO MaxTime=INFINITE State=UP
CONF

# --- optional accounting database -----------------------------------------
if [ "$WITH_DBD" = 1 ]; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if ! mariadb -e 'select 1' >/dev/null 2>&1; then
    # detach fully: no inherited stdout/stderr, or a caller's pipe (`| tee`) never closes
    (cd / && exec setsid mysqld_safe) </dev/null >/var/log/slurm/mysqld_safe.log 2>&1 &
    for _ in $(seq 1 60); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat > /etc/slurm/slurmdbd.conf <<'CONF'
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurmpw
CONF
  chmod 600 /etc/slurm/slurmdbd.conf
  pgrep -x slurmdbd >/dev/null || /usr/sbin/slurmdbd
  for _ in $(seq 1 40); do (exec 3<>/dev/tcp/127.0.0.1/6819) 2>/dev/null && break; sleep 0.25; done
fi

# --- slurm daemons (each daemonizes itself and writes its pid file) --------
pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd -N localhost
state=""
for _ in $(seq 1 60); do
  state="$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)"
  case "$state" in idle|mix|alloc) break ;; esac
  sleep 0.5
done
case "$state" in
  idle|mix|alloc) ;;
  *) echo "start_slurm.sh: the node never came up (state '$state'); see /var/log/slurm/" >&2; false ;;
esac
sinfo
if [ "$WITH_DBD" = 1 ]; then sacct -X -n >/dev/null && echo "sacct OK"; fi
echo "SLURM cluster up (partition=$PARTITION, WITH_DBD=$WITH_DBD)"
