#!/bin/sh
# Restart script of the stall-monitor end-to-end tests
# (cmd/pcheck/stall_e2e_test.go): it records its call in @CALLS@ and starts
# the web service again (the e2e test binary in the role of
# checker/stall/stalltest; @START@ is its command line).
echo "$1 $2 $3" >> '@CALLS@'
@START@
exit 0
