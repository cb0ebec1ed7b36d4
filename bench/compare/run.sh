#!/bin/bash
# make bench-compare: pcheck against monit and supervisord, side by side.
# Installs monit and supervisor from Debian when missing (idempotent), makes
# sure no system monit or supervisord is left running by the packages,
# builds pcheck, the target program, the floor and the harness, and runs every
# workload once; the harness rewrites docs/benchmarks.md. Extra arguments
# go to the harness (see `go run ./bench/compare/cmd/compare -h`).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"

if ! command -v monit >/dev/null || ! command -v supervisord >/dev/null; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench-compare: monit and supervisor are missing and installing them needs root" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq monit supervisor >/dev/null
fi

# The packages' postinst may start the system services (where policy
# allows). The benchmark runs its own private instances only, and a system
# one would share the CPU: stop it, through its own service script.
running() {
	local f
	for f in "$@"; do
		[ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && return 0
	done
	return 1
}
if running /run/monit.pid /var/run/monit.pid; then
	echo "bench-compare: stopping the system monit" >&2
	service monit stop
fi
if running /run/supervisord.pid /var/run/supervisord.pid; then
	echo "bench-compare: stopping the system supervisord" >&2
	service supervisor stop
fi

bin=$(mktemp -d /tmp/pcheck-bench-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
go build -ldflags "-X main.version=$version" -o "$bin/pcheck" ./cmd/pcheck
go build -o "$bin/target" ./bench/compare/cmd/target
go build -o "$bin/floor" ./bench/compare/cmd/floor
go build -o "$bin/compare" ./bench/compare/cmd/compare
"$bin/compare" -pcheck "$bin/pcheck" -target "$bin/target" -floor "$bin/floor" -out docs/benchmarks.md "$@"
