#!/bin/sh
# Restart script of the demo web server. pcheck runs it as
#   restart_demoweb.sh <process> <old-pid> <reason>
# with PCHECK_PROCESS, PCHECK_PID, PCHECK_REASON and PCHECK_ATTEMPT set (and
# DEMO_DIR, DEMO_PORT and BIN from make run). It starts the server in a
# session of its own, so that a Ctrl-C of make run leaves it running, and
# returns; pcheck then looks for the process (StartWait). Its output goes
# to pcheck's log.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN=${DEMO_DIR:-$ROOT/.run}
BIN=${BIN:-$ROOT/bin}
mkdir -p "$RUN"
echo "starting demoweb (reason ${3:-start}, attempt ${PCHECK_ATTEMPT:-0})"
setsid -f "$BIN/demoweb" -addr "127.0.0.1:${DEMO_PORT:-8080}" -pidfile "$RUN/demoweb.pid" \
	>>"$RUN/demoweb.log" 2>&1 </dev/null
