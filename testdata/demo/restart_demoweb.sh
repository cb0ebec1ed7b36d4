#!/bin/sh
# Restart script of the demo web server. pcheck runs it as
#   restart_demoweb.sh <process> <old-pid> <reason>
# with PCHECK_PROCESS, PCHECK_PID, PCHECK_REASON and PCHECK_ATTEMPT set. It
# starts the server in the background and returns; pcheck then looks for
# the process (StartWait). Its output goes to pcheck's log.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN="$ROOT/.run"
mkdir -p "$RUN"
echo "starting demoweb (reason ${3:-start}, attempt ${PCHECK_ATTEMPT:-0})"
nohup "$ROOT/bin/demoweb" -pidfile "$RUN/demoweb.pid" >>"$RUN/demoweb.log" 2>&1 </dev/null &
