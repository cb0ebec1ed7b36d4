#!/bin/bash
# restart_apache.sh: pcheck restart script for Apache httpd, in the Debian
# layout (/usr/sbin/apache2, /etc/apache2) or the Red Hat one
# (/usr/sbin/httpd, /etc/httpd).
#
# pcheck runs it as: restart_apache.sh <process> <old-pid> <reason>
# (reason: down, zombie, stall, pidfail; stop from the OCF agent's
# stop_services: stop the server, start nothing); it may also be run by hand with no
# arguments. It stops what is left of the old server (only processes of this
# Apache: the old pid and the pid file's process and their process groups),
# starts Apache, waits until it answers and exits 0, or non-zero when it
# could not bring Apache up. Its output goes to syslog through pcheck.
set -u

##### settings: change these for your host (see README.md) #####
# The layout follows the process the pfile names (argument 1), else the
# binary that is installed.
case ${1:-} in
*/httpd) layout=redhat ;;
*/apache2) layout=debian ;;
*) if [ -x /usr/sbin/apache2 ]; then layout=debian; else layout=redhat; fi ;;
esac
if [ "$layout" = debian ]; then
	: "${PRODUCT_EXES=/usr/sbin/apache2}"     # executables of Apache's processes
	: "${PID_FILE=/run/apache2/apache2.pid}"  # APACHE_PID_FILE of /etc/apache2/envvars
	: "${ENV_FILE=/etc/apache2/envvars}"      # sourced before the start
else
	: "${PRODUCT_EXES=/usr/sbin/httpd}"
	: "${PID_FILE=/run/httpd/httpd.pid}"      # PidFile of httpd.conf
	: "${ENV_FILE=/etc/sysconfig/httpd}"
fi
: "${PRODUCT_MATCH=}"                      # text its command line must contain ("" = any)
: "${PROBE_URL=http://127.0.0.1:80/}"      # what must answer once it is up
: "${START_WAIT=60}"                       # seconds to wait for that answer
: "${KILL_WAIT=5}"                         # seconds between SIGTERM and SIGKILL
: "${SYSTEMD_UNIT=}"                       # set (apache2 or httpd) to start it with systemctl

# start_product starts Apache in a session of its own, so that it outlives
# this script (pcheck kills the script's process group when the script
# overruns RestartTimeout). Apache detaches itself and returns.
start_product() {
	if [ -r "$ENV_FILE" ]; then
		set -a
		# shellcheck disable=SC1090
		. "$ENV_FILE"
		set +a
	fi
	if [ "$layout" = debian ]; then
		mkdir -p "${APACHE_RUN_DIR:-/run/apache2}" "${APACHE_LOCK_DIR:-/run/lock/apache2}"
	else
		mkdir -p /run/httpd
	fi
	# shellcheck disable=SC2086
	setsid "${PRODUCT_EXES%% *}" ${OPTIONS:-} -k start
}
##### end of settings #####

# ---- common part: the same in every pcheck template (templates_test.go checks) ----

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# stat_field PID N sets REPLY to field N of /proc/PID/stat (proc(5)
# numbering: 3 is the state, 5 the process group); it fails when PID is gone.
stat_field() {
	local s n=$(($2 - 3))
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*) }
	set -- $s
	shift "$n"
	REPLY=${1:-}
}

# is_product PID succeeds when PID is a live process of this product: its
# executable (an entry of PRODUCT_EXES with a "/") or its name (an entry
# without) is listed, and its command line contains PRODUCT_MATCH.
is_product() {
	local pid=$1 exe="" comm cmdline e ok=""
	stat_field "$pid" 3 && [ "$REPLY" != Z ] || return 1
	{ read -r comm <"/proc/$pid/comm"; } 2>/dev/null || return 1
	for e in $PRODUCT_EXES; do
		case $e in
		/*)
			if [ -z "$exe" ]; then
				exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
				exe=${exe% (deleted)}
			fi
			[ "$exe" = "$e" ] || [ "$exe" = "$(readlink -f "$e")" ] && ok=1
			;;
		*) [ "$comm" = "$e" ] && ok=1 ;;
		esac
	done
	[ -n "$ok" ] || return 1
	[ -n "$PRODUCT_MATCH" ] || return 0
	cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
	[[ $cmdline == *"$PRODUCT_MATCH"* ]]
}

# leftovers SEED... prints what is left of the product. With PRODUCT_MATCH
# set, that names this installation: every process of the product. Without
# it: the product's processes that are a seed or in the process group of
# one (the group a live seed belongs to, and the group a dead seed led,
# which its orphaned workers keep).
leftovers() {
	local groups=" " seed p g
	for seed in "$@"; do
		[[ $seed =~ ^[0-9]+$ ]] && ((10#$seed > 1)) || continue
		groups+="$seed "
		if is_product "$seed" && stat_field "$seed" 5 && ((REPLY > 1)); then
			groups+="$REPLY "
		fi
	done
	[ -n "$PRODUCT_MATCH" ] || [ "$groups" != " " ] || return 0
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		((p != $$ && p != PPID)) || continue
		stat_field "$p" 5 || continue
		g=$REPLY
		if [ -n "$PRODUCT_MATCH" ] || [[ $groups == *" $p "* || $groups == *" $g "* ]]; then
			is_product "$p" && printf '%s\n' "$p"
		fi
	done
}

# alive PID... prints the pids that are still processes of this product.
alive() {
	local p
	for p in "$@"; do
		is_product "$p" && printf '%s\n' "$p"
	done
}

# stop_leftovers SEED... ends what is left of the product: SIGTERM, then
# SIGKILL after KILL_WAIT seconds, only ever to processes of the product.
stop_leftovers() {
	local pids i
	pids=$(leftovers "$@")
	[ -n "$pids" ] || return 0
	log "stopping leftover processes:" $pids
	kill -TERM $pids 2>/dev/null
	for ((i = 0; i < KILL_WAIT * 10; i++)); do
		pids=$(alive $pids)
		[ -n "$pids" ] || return 0
		sleep 0.1
	done
	log "killing leftover processes that ignored SIGTERM:" $pids
	kill -KILL $pids 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		pids=$(alive $pids)
		[ -n "$pids" ] || return 0
		sleep 0.1
	done
	log "leftover processes survive SIGKILL:" $pids
	return 1
}

# pid_from_file prints the pid recorded in PID_FILE, if any.
pid_from_file() {
	local pid=""
	[ -n "$PID_FILE" ] && { read -r pid _ <"$PID_FILE"; } 2>/dev/null
	[[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
	return 0
}

# remove_stale_pid_file removes PID_FILE when it names no process of the
# product. The old server is gone by now (stop_leftovers), but its pid can
# still be an unreaped zombie or belong to another program, and products
# refuse to start while their pid file names a live pid ("apache2 -k
# start": "httpd (pid N) already running"; catalina.sh likewise).
remove_stale_pid_file() {
	local pid
	pid=$(pid_from_file)
	if [ -n "$pid" ] && ! is_product "$pid"; then
		log "removing the stale pid file $PID_FILE (pid $pid is not the product)"
		rm -f "$PID_FILE"
	fi
}

# answers succeeds when the product answers PROBE_URL: any HTTP answer
# with curl (certificates are not checked: this is a liveness probe), else a
# TCP connection to its host and port.
answers() {
	local hostport host port
	if command -v curl >/dev/null; then
		curl -k -s -o /dev/null -I --max-time 5 "$PROBE_URL"
		return
	fi
	hostport=${PROBE_URL#*://}
	hostport=${hostport%%/*}
	case $hostport in
	*\]:* | [!\[]*:*) host=${hostport%:*} port=${hostport##*:} ;;
	*)
		host=$hostport port=80
		[[ $PROBE_URL != https:* ]] || port=443
		;;
	esac
	host=${host#[}
	host=${host%]}
	timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

# wait_ready waits up to START_WAIT seconds for the product to answer.
wait_ready() {
	local deadline=$((SECONDS + START_WAIT))
	while :; do
		if answers; then
			return 0
		fi
		if ((SECONDS >= deadline)); then
			return 1
		fi
		sleep 1
	done
}

main() {
	local proc=${1:-$PRODUCT_EXES} oldpid=${2:-0} reason=${3:-manual}
	if [ "$reason" = stop ]; then
		# The cluster stops the service on this node (the OCF agent's
		# stop_services=true): stop it, start nothing.
		log "stopping '$proc' (old pid $oldpid, reason stop)"
		if [ -n "$SYSTEMD_UNIT" ] && ! systemctl stop "$SYSTEMD_UNIT"; then
			log "could not stop '$proc': systemctl stop $SYSTEMD_UNIT failed"
			return 1
		fi
		stop_leftovers "$oldpid" "$(pid_from_file)" || return 1
		remove_stale_pid_file
		log "'$proc' is stopped"
		return 0
	fi
	log "restarting '$proc' (old pid $oldpid, reason $reason, attempt ${PCHECK_ATTEMPT:-manual})"
	stop_leftovers "$oldpid" "$(pid_from_file)" || return 1
	remove_stale_pid_file
	if [ -n "$SYSTEMD_UNIT" ]; then
		systemctl restart "$SYSTEMD_UNIT"
	else
		start_product </dev/null
	fi || {
		log "could not start '$proc': the start command failed with status $?"
		return 1
	}
	if ! wait_ready; then
		log "'$proc' does not answer $PROBE_URL after $START_WAIT s"
		return 1
	fi
	log "'$proc' is up and answers $PROBE_URL"
}

main "$@"
