#!/usr/bin/env bash
# slurm-lab.sh check|start|stop|status|exec CMD... : the real single-node Slurm 22.05 lab of
# ../shared/slurm (start-slurm-lab.sh), run inside its own PID + mount namespace.
#
# Why a namespace: the machine image runs its own mariadbd (port 3306), and the shared script starts
# the lab's private MariaDB with `start-stop-daemon --exec /usr/sbin/mariadbd`, which refuses to start
# while any mariadbd is visible in /proc. In a fresh PID namespace with its own /proc the system
# mariadbd is invisible, so the shared script runs unmodified and the system service keeps running.
# The network namespace stays shared (slurmrestd 127.0.0.1:6820, MariaDB 127.0.0.1:3307, slurmctld/
# slurmdbd ports) and so does the filesystem (munge socket, /etc/slurm, $SLURM_LAB_DIR), so sbatch,
# sacct, scontrol and the REST client work from outside the namespace.
#
#   check    exit 0 when this machine can run the lab, else print why (one line) and exit 1
#   start    start the lab (idempotent: re-runs the shared script inside the existing namespace)
#   stop     stop the daemons by their pid files inside the namespace, then kill the namespace
#   status   exit 0 when the lab's slurmctld answers
#   exec     run a command inside the namespace (e.g. `exec ps aux`)
#
# Environment: SLURM_LAB_DIR [/tmp/slurmlab], SLURM_LAB_SCRIPTS [../shared/slurm from the repo root],
# SLURM_LAB_START_TIMEOUT [300] seconds; the shared script's own variables pass through.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCRIPTS=${SLURM_LAB_SCRIPTS:-$(cd "$ROOT/.." && pwd)/shared/slurm}
LAB=${SLURM_LAB_DIR:-/tmp/slurmlab}
export SLURM_LAB_DIR=$LAB
# Host pid of the `unshare` process; the namespace's init (its pid 1) is that process's only child.
NS_PID_FILE=$LAB/namespace.pid
NS_LOG=$LAB/namespace.log
START_TIMEOUT=${SLURM_LAB_START_TIMEOUT:-300}
PACKAGES=(munge mariadb-server slurmctld slurmd slurm-client slurmdbd slurmrestd
  slurm-wlm-basic-plugins slurm-wlm-jwt-plugin slurm-wlm-mysql-plugin curl jq)

log() { printf '[%(%H:%M:%S)T] slurm-lab: %s\n' -1 "$*" >&2; }

why_not() {
  [ "$(id -u)" = 0 ] || { echo "not running as root"; return; }
  [ -x "$SCRIPTS/start-slurm-lab.sh" ] || { echo "$SCRIPTS/start-slurm-lab.sh not found"; return; }
  mountpoint -q /sys/fs/cgroup || { echo "no cgroup filesystem mounted at /sys/fs/cgroup (slurmd 22.05 needs one)"; return; }
  command -v unshare >/dev/null && command -v nsenter >/dev/null || { echo "unshare/nsenter (util-linux) not found"; return; }
  if ! command -v apt-get >/dev/null; then
    local p
    for p in "${PACKAGES[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || { echo "no apt-get to install the Slurm packages (missing $p)"; return; }
    done
  fi
  unshare --pid --fork --mount-proc true 2>/dev/null || { echo "cannot create a PID namespace (unshare --pid failed)"; return; }
}

# Prints the host pid of the namespace's init, or nothing when the namespace is gone.
ns_init() {
  [ -s "$NS_PID_FILE" ] || return 0
  local upid
  upid=$(tr -dc 0-9 <"$NS_PID_FILE")
  [ -n "$upid" ] && [ "$(cat "/proc/$upid/comm" 2>/dev/null)" = unshare ] || return 0
  # the pid file is ours only while that unshare still holds our log open
  [ "$(readlink "/proc/$upid/fd/1" 2>/dev/null)" = "$NS_LOG" ] || return 0
  if [ -r "/proc/$upid/task/$upid/children" ]; then
    cut -d' ' -f1 <"/proc/$upid/task/$upid/children" | tr -dc 0-9
  else
    pgrep -P "$upid" | head -1
  fi
}

# One start or stop at a time: two test runs starting at once would otherwise race for the ports.
lock() { exec 9>>"$LAB/namespace.lock"; flock -w 600 9 || { log "could not lock $LAB/namespace.lock"; exit 1; }; }

in_ns() { # in_ns CMD... : run CMD in the namespace's PID and mount namespaces (its /proc)
  local init
  init=$(ns_init)
  [ -n "$init" ] || { log "no lab namespace running"; return 1; }
  nsenter --target "$init" --pid --mount -- "$@" 9>&-
}

# slurmctld answers; also true for a lab started without this script (directly on a host with no
# other mariadbd), which start then uses as it is and stop leaves alone.
is_up() { timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }

start() {
  local reason
  reason=$(why_not)
  [ -z "$reason" ] || { log "cannot run the lab here: $reason"; return 2; }
  mkdir -p "$LAB"
  lock
  if [ -n "$(ns_init)" ]; then
    log "namespace already running (init pid $(ns_init)); re-running start-slurm-lab.sh inside it"
    in_ns bash "$SCRIPTS/start-slurm-lab.sh"
    return
  fi
  if is_up && [ -s "$LAB/jwt/token.env" ]; then
    log "a lab outside any namespace of this script is already up; using it as it is"
    return 0
  fi
  rm -f "$LAB/namespace.started"
  : >"$NS_LOG"
  # pid 1 runs the shared script, records its exit status, then stays as the namespace's init:
  # a bash waiting in a loop reaps the daemons it inherits (they double-fork), so their pid
  # files never point at zombies. --kill-child: when unshare dies, the whole namespace dies.
  setsid unshare --pid --fork --mount-proc --kill-child bash -c '
    bash "$1/start-slurm-lab.sh"
    echo $? >"$2/namespace.started"
    while :; do sleep 3600 & wait $!; done' _ "$SCRIPTS" "$LAB" </dev/null >>"$NS_LOG" 2>&1 9>&- &
  echo $! >"$NS_PID_FILE"
  local i rc
  for ((i = 0; i < START_TIMEOUT * 2; i++)); do
    [ -s "$LAB/namespace.started" ] && break
    [ -n "$(ns_init)" ] || [ "$i" -lt 4 ] || break
    sleep 0.5
  done
  rc=$(cat "$LAB/namespace.started" 2>/dev/null || echo timeout)
  if [ "$rc" != 0 ]; then
    log "start-slurm-lab.sh failed ($rc); last lines of $NS_LOG:"
    tail -15 "$NS_LOG" >&2
    stop
    return 1
  fi
  log "lab up in namespace (init pid $(ns_init)); token: $LAB/jwt/token.env"
}

stop() {
  local upid init i
  [ -d "$LAB" ] && lock
  init=$(ns_init)
  if [ -z "$init" ]; then
    log "no lab namespace running"
    rm -f "$NS_PID_FILE" "$LAB/namespace.started"
    return 0
  fi
  upid=$(tr -dc 0-9 <"$NS_PID_FILE")
  # Orderly first (cancels jobs, lets MariaDB and slurmctld save their state), then the namespace:
  # SIGKILL to unshare makes the kernel kill its init and with it every process left inside.
  timeout 90 nsenter --target "$init" --pid --mount -- bash "$SCRIPTS/stop-slurm-lab.sh" >>"$NS_LOG" 2>&1 9>&- \
    || log "stop-slurm-lab.sh failed or timed out; killing the namespace"
  kill -KILL "$upid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do [ -d "/proc/$init" ] && [ "$(cat "/proc/$init/stat" 2>/dev/null | cut -d' ' -f3)" != Z ] || break; sleep 0.25; done
  rm -f "$NS_PID_FILE" "$LAB/namespace.started"
  log "lab stopped"
}

case "${1:-}" in
  check)
    reason=$(why_not)
    [ -z "$reason" ] || { echo "$reason"; exit 1; }
    ;;
  start) start ;;
  stop) stop ;;
  status) is_up ;;
  exec) shift; in_ns "$@" ;;
  *) echo "usage: $0 check|start|stop|status|exec CMD..." >&2; exit 2 ;;
esac
