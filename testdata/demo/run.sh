#!/bin/bash
# make run: pcheck in the foreground on the demo pfile, watching the demo
# web server (both built by make build, so they carry its version). Kill the
# server, or stop it (kill -STOP), and watch pcheck bring it back; Ctrl-C
# stops pcheck, the server keeps running. run.sh stop stops the server make
# run started; run.sh clean (make clean) stops it and removes the files the
# demo made, and DEMO_DIR when nothing else is left in it.
#
# DEMO_DIR (default .run), DEMO_PORT (default 8080) and BIN (default bin)
# come from the Makefile; relative paths are taken from the repository.
set -eu
umask 022 # what the demo creates (.run, the pfile) is not writable by others
# The physical path: /proc/PID/exe, which running compares, is one.
ROOT=$(cd "$(dirname "$0")/../.." && pwd -P)
cd "$ROOT"
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }
DEMO_DIR=$(abs "${DEMO_DIR:-.run}")
BIN=$(abs "${BIN:-bin}")
DEMO_PORT=${DEMO_PORT:-8080}
export DEMO_DIR BIN DEMO_PORT # for restart_demoweb.sh, run by pcheck too

# running succeeds when the pid file names a live demoweb of $BIN (one
# rebuilt since it started too), and sets pid. Both paths are resolved:
# $BIN may go through a symbolic link.
running() {
	local exe
	pid=$(cat "$DEMO_DIR/demoweb.pid" 2>/dev/null) || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	[ "${exe% (deleted)}" = "$(readlink -f "$BIN/demoweb")" ]
}

# stop stops the demo server when it runs; it fails, the pid file left, when
# the server is still there after 10 s.
stop() {
	running || return 0
	kill -TERM "$pid" && kill -CONT "$pid" # a stalled (stopped) one too
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null && running; then
		echo "make clean: the demo server (pid $pid) is still running 10 s after SIGTERM; kill it (kill -9 $pid) and run make clean again" >&2
		return 1
	fi
	echo "make clean: stopped the demo server (pid $pid)"
}

# clean removes what the demo made in DEMO_DIR, by name, never the
# directory's other files (DEMO_DIR may be one the operator chose): the
# pfile, the server's pid file and log, pcheck's dump, and in state/ and
# run/ pcheck's files of the demo pfile (named by state.Name: its absolute
# path, / and unusual characters made _, the last 80 characters, then -hash).
clean() {
	local pf stem d
	pf=$(realpath -ms "$DEMO_DIR/demo.pf")
	stem=$(printf '%s' "${pf#/}" | LC_ALL=C tr -c 'A-Za-z0-9._-' '_')
	[ "${#stem}" -le 80 ] || stem=${stem: -80}
	rm -f -- "$DEMO_DIR/demo.pf" "$DEMO_DIR/demoweb.pid" "$DEMO_DIR/demoweb.log" "$DEMO_DIR/pcheck-dump.json"
	for d in state run; do
		[ -d "$DEMO_DIR/$d" ] || continue
		rm -f -- "$DEMO_DIR/$d/$stem"-* "$DEMO_DIR/$d/.$stem"-*
		rmdir -- "$DEMO_DIR/$d" 2>/dev/null || true
	done
	if [ -d "$DEMO_DIR" ] && ! rmdir -- "$DEMO_DIR" 2>/dev/null; then
		echo "make clean: $DEMO_DIR holds files the demo did not make; left them there"
	fi
}
case ${1:-} in
stop)
	stop
	exit
	;;
clean)
	stop && clean
	exit
	;;
esac
for b in pcheck padmin demoweb; do
	if [ ! -x "$BIN/$b" ]; then
		echo "make run: $BIN/$b is missing; run make run (it builds the binaries first)" >&2
		exit 2
	fi
done
echo "make run: pcheck $("$BIN/pcheck" --version | cut -d' ' -f2) on the demo pfile $DEMO_DIR/demo.pf"
mkdir -p "$DEMO_DIR"
sed -e "s|@ROOT@|$ROOT|g" -e "s|@BIN@|$BIN|g" -e "s|@RUN@|$DEMO_DIR|g" -e "s|@PORT@|$DEMO_PORT|g" \
	testdata/demo/demo.pf.in >"$DEMO_DIR/demo.pf"

# pcheck runs the restart script as root only when no other user can change
# it or the directories above it. A checkout made with umask 002 (files and
# directories writable by the group) is refused: say so before starting.
if ! "$BIN/pcheck" -n "$DEMO_DIR/demo.pf" >/dev/null; then
	cat >&2 <<MSG

pcheck refuses the demo: the lines above name each file or directory that users
other than $(id -un) could change, and the command that fixes it. A checkout made
with umask 002 is writable by its group; fix it with
    chmod -R go-w '$ROOT'
(or clone again with umask 022) and run make run again.
MSG
	exit 2
fi

# The demo server runs when its pid file names a live demoweb; pcheck adopts
# it. Otherwise its port must be free.
if ! running; then
	if (exec 3<>"/dev/tcp/127.0.0.1/$DEMO_PORT") 2>/dev/null; then
		cat >&2 <<MSG
make run: port $DEMO_PORT on 127.0.0.1 is taken by another program, so the demo
server cannot listen there. Stop that program, or choose another port:
    make run DEMO_PORT=8081
MSG
		exit 2
	fi
	testdata/demo/restart_demoweb.sh demoweb 0 start
	for _ in $(seq 50); do
		running && break
		sleep 0.1
	done
fi
running || pid='?'
rel=${DEMO_DIR#"$ROOT"/}
relbin=${BIN#"$ROOT"/}
syslog="pcheck logs to syslog and copies each line here"
[ -S /dev/log ] || syslog="no syslog here (/dev/log): pcheck says so once, then logs here only"
cat <<MSG
demo web server: http://127.0.0.1:$DEMO_PORT/  (pid $pid, in a session of its own)
  kill it:        kill -9 \$(cat $rel/demoweb.pid)      pcheck restarts it at once
  stall it:       kill -STOP \$(cat $rel/demoweb.pid)   pcheck finds the stall within
                  about 20 s, kills the server and restarts it
  status:         PCHECK_RUN_DIR=$rel/run $relbin/padmin status demo
  state dump:     kill -USR1 <pcheck pid>; cat $rel/pcheck-dump.json
  stop pcheck:    Ctrl-C; the server keeps running (make clean stops it)
  $syslog
MSG
exec "$BIN/pcheck" --state-dir "$DEMO_DIR/state" --run-dir "$DEMO_DIR/run" "$DEMO_DIR/demo.pf"
