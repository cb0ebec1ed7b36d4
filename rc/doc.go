// Package rc holds pcheck's service files, which are not Go: the systemd
// template unit pcheck@.service, the LSB init script pcheck.init and the
// sample /etc/pcheck/runlist. Its tests verify the unit with
// systemd-analyze, run the init script against the real daemon, and run
// `make install` into a temporary DESTDIR.
package rc
