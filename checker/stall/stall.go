// Package stall runs pcheck's stall monitors: the PS_EXEC entries of a
// pfile's _bi_* blocks. Each is a probe (package probe) attempted every
// interval while its process is Up; when attempts have failed without a
// success for the failover time the process is stalled.
//
// A Monitor belongs to its process entry (package engine), which starts it
// when the process comes Up and stops it when the process leaves Up (a
// restarting process is on hold and never stalled). Every attempt's result
// is delivered to the entry, the way a pidfd death is; the entry alone
// logs, kills (once per pid however many of its monitors stall) and
// changes state: this package calls nobody back.
//
// The probes are stateless one-shot checks; everything that makes an
// attempt part of a schedule lives here: the interval and its random first
// stagger, the attempt's deadline, the failover time, the In doubt state,
// PS_EXEC error (stop after the first stall) and PS_ACTION error (retry
// over when the kill fails). One Runtime schedules the attempts of every
// monitor of every pfile (one timer, a pool of workers); two attempts of
// one monitor never overlap, and the next starts one interval after the
// previous started, or at once when the previous took longer than the
// interval.
//
// The failover time is measured on the monotonic clock from the start of
// the first failed attempt of an uninterrupted series of failures to the
// end of a failed attempt: a service is stalled only once it has been seen
// failing for the failover time, however soon after a success it hung, and
// a step of the wall clock changes nothing. An attempt the probe could not
// make because of pcheck's own side (probe.Result.Unknown) is no failure:
// the monitor is Unknown with the reason (the entry logs Monitor unknown
// once when it becomes Unknown or the reason changes), and the series of
// failures in progress ends, as the service was not seen failing then.
// Time in which pcheck itself did not run (a late timer, late ticks of its
// own freeze watch, a suspend) never counts toward the failover, and a
// failed attempt during which pcheck did not run is not measured. A
// heartbeat attempt fails when the file is missing or its modification
// time is the one the previous attempt saw (the first attempt of a run
// only takes note of it). These rules are the Failover type's, a pure
// threshold with no clock.
package stall
