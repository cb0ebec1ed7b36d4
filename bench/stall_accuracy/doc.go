// Package stallaccuracy measures how long pcheck takes to find and kill a
// hung web server: interval 1 s, failover 5 s, 20 hangs (SIGSTOP), the
// time from each hang to the find message, to the Killed Process line and
// to the process's death, as min/median/max. Every figure must lie between
// the failover time and failover + interval + attempt timeout.
//
// It takes about 2.5 minutes and runs only as a benchmark:
//
//	go test -run '^$' -bench StallAccuracy ./bench/stall_accuracy
//
// pcheck is the daemon (daemon.Run, the code of the pcheck binary) in a
// re-executed copy of the test binary, logging to a syslog socket of the
// benchmark; the web server is the test binary as checker/stall/stalltest.
package stallaccuracy
