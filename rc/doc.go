// Package rc holds pcheck's service files, which are not Go: the systemd
// template unit pcheck@.service, the LSB init script pcheck.init, the
// sample /etc/pcheck/runlist and the Prometheus alert rules
// prometheus/pcheck-rules.yml. Its tests verify the unit with
// systemd-analyze, run the init script against the real daemon, check and
// unit-test the rules with promtool (and the sample configurations of
// docs/metrics.md with it), and run `make install` into a temporary
// DESTDIR.
package rc
