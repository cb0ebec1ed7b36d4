#!/bin/sh
# make run: build pcheck and the demo web server, start the server, and run
# pcheck in the foreground on the demo pfile. Kill the server and watch
# pcheck bring it back; Ctrl-C stops pcheck (the server keeps running).
set -eu
umask 022 # what the demo creates (.run, the pfile) is not writable by others
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN="$ROOT/.run"
GO=${GO:-go}
cd "$ROOT"
mkdir -p "$RUN" bin
$GO build -o bin/pcheck ./cmd/pcheck
$GO build -o bin/demoweb ./cmd/demoweb
sed "s|@ROOT@|$ROOT|g" testdata/demo/demo.pf.in >"$RUN/demo.pf"

# pcheck runs the restart script as root only when no other user can change
# it or the directories above it. A checkout made with umask 002 (files and
# directories writable by the group) is refused: say so before starting.
if ! bin/pcheck -n "$RUN/demo.pf" >/dev/null; then
	cat >&2 <<MSG

pcheck refuses the demo: the lines above name each file or directory that users
other than $(id -un) could change, and the command that fixes it. A checkout made
with umask 002 is writable by its group; fix it with
    chmod -R go-w '$ROOT'
(or clone again with umask 022) and run make run again.
MSG
	exit 2
fi

# Start the server unless it already runs (pcheck adopts it either way).
pid=$(cat "$RUN/demoweb.pid" 2>/dev/null || true)
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
	testdata/demo/restart_demoweb.sh demoweb 0 start
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ -s "$RUN/demoweb.pid" ] && break
		sleep 0.2
	done
fi

cat <<MSG
demo web server: http://127.0.0.1:8080/  (pid $(cat "$RUN/demoweb.pid" 2>/dev/null || echo '?'))
  kill it:        kill -9 \$(cat .run/demoweb.pid)    and watch pcheck restart it
  state dump:     kill -USR1 <pcheck pid>; cat .run/pcheck-dump.json
  stop pcheck:    Ctrl-C (the server keeps running; stop it with kill \$(cat .run/demoweb.pid))
MSG
exec bin/pcheck --state-dir "$RUN/state" --run-dir "$RUN/run" "$RUN/demo.pf"
