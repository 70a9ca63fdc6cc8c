#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by cluster/start-slurm.sh.
#
#   cluster/stop-slurm.sh [--purge]
#
#   --purge   also delete the state dir (DB, job history, logs) and the
#             /etc/slurm/slurm.conf symlink, so the next start is from scratch.
#
# Only processes named in the PID files under $PADOCC_SLURM_DIR/pids are
# signalled. Exits 0 if nothing is running.
set -euo pipefail

STATE="${PADOCC_SLURM_DIR:-/tmp/padocc-slurm}"
PIDS="$STATE/pids"
export SLURM_CONF="$STATE/etc/slurm.conf"
PURGE=0
case ${1:-} in
  --purge) PURGE=1 ;;
  "") ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

say() { echo "[stop-slurm] $*" >&2; }

comm_of() {
  case $1 in
    munged) echo munged ;; mariadb) echo mariadbd ;; *) echo "$1" ;;
  esac
}

# pid_of NAME: print the PID if the PID file names a live process of the right
# program (a stale PID file may point at an unrelated, reused PID).
pid_of() {
  local f="$PIDS/$1.pid" pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$(comm_of "$1")" ]] || return 1
  echo "$pid"
}

# Cancel jobs first so their slurmstepd/rule processes do not outlive slurmd.
if pid_of slurmctld >/dev/null && command -v squeue >/dev/null; then
  jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
  if [[ -n $jobs ]]; then
    say "cancelling jobs: ${jobs//$'\n'/ }"
    # shellcheck disable=SC2086
    timeout 10 scancel $jobs 2>/dev/null || true
    for _ in $(seq 40); do
      [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null || true) ]] && break
      sleep 0.25
    done
  fi
fi

stopped=0
# stop_group NAME...: SIGTERM all of them at once, wait (bounded) for all,
# SIGKILL leftovers. Each daemon needs ~2 s to exit on TERM.
stop_group() {
  local d pid pids=() names=()
  for d in "$@"; do
    if pid=$(pid_of "$d"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$d"); stopped=$((stopped + 1))
    fi
    rm -f "$PIDS/$d.pid"
  done
  local i deadline=$((SECONDS + 20))   # mariadb flushes InnoDB: allow some time
  for i in "${!pids[@]}"; do
    while kill -0 "${pids[$i]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      say "${names[$i]} (pid ${pids[$i]}) ignored SIGTERM for 20s; sending SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      sleep 0.5
    fi
  done
}
# Stages: compute daemons; then slurmdbd (slurmctld flushes accounting to it
# on exit); then the DB and munge, which slurmdbd needed until it exited.
stop_group slurmd slurmctld
stop_group slurmdbd
stop_group mariadb munged
# Sockets/PID files the daemons may leave behind after a SIGKILL.
rm -f "$STATE/run/"*.pid "$STATE/run/mysqld.sock" /run/munge/munged.pid

msg="SLURM cluster not running (nothing to stop)"
((stopped)) && msg="SLURM cluster stopped ($stopped daemons)"
if ((PURGE)); then
  # Only remove our own symlink, never a real config.
  f=/etc/slurm/slurm.conf
  if [[ -L $f && $(readlink "$f") == "$STATE/"* ]]; then rm -f "$f"; fi
  rm -rf "$STATE"
  msg+="; removed $STATE"
fi
echo "$msg"
