#!/bin/sh
# Restart script of the end-to-end tests (cmd/pcheck/e2e_test.go). The test
# copies it per service, replacing @BIN@ (the e2e test binary, which plays
# the service), @TAG@ (the service's tag, its argv[2]) and @CALLS@ (where
# each call is recorded). MODE selects what the script does:
#   start    start the service in the background and exit 0
#   nothing  start nothing (the process is never found: Set pid fail)
MODE=@MODE@
echo "$1 $2 $3 attempt=$PCHECK_ATTEMPT" >> '@CALLS@'
echo "restarting $1 (old pid $2, $3)"
case "$MODE" in
start)
	E2E_ROLE=service '@BIN@' service '@TAG@' </dev/null >/dev/null 2>&1 &
	;;
nothing)
	;;
esac
exit 0
