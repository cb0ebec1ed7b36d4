package engine

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/proc"
)

// maxKillRounds bounds the SIGKILL rounds of a group kill: each one scans
// /proc again for members forked meanwhile.
const maxKillRounds = 5

// groupKill stops what is left of a restart script that outlived
// RestartTimeout: the members of its process group, but never a process
// its entry matches (a daemon the script started without setsid, serving
// already), nor its descendants, nor its ancestors in the group below the
// script (a wrapper such as runuser that holds the daemon and could take
// it down with it). Members are signalled by proc.ID, so a pid reused
// meanwhile is never hit, and never pid 1, pcheck or its ancestors.
type groupKill struct {
	scan    func() (*snapshot, error) // a fresh /proc snapshot
	match   func(all []proc.Info) []proc.Info
	protect protected
}

// stop ends the group pgid of the script leader: SIGTERM (and SIGCONT,
// for a stopped member), up to killWait for the script to exit, then
// SIGKILL to whatever is left, again while new members appear. exited is
// closed when the script has exited. It reports whether the script itself
// was spared, having become the process the entry matches (exec): it is
// then left running.
func (g groupKill) stop(leader proc.ID, pgid int, exited <-chan struct{}, killWait time.Duration) (leaderSpared bool) {
	_, leaderSpared = g.signal(leader, pgid, nil, unix.SIGTERM, unix.SIGCONT)
	wait := time.NewTimer(killWait)
	select {
	case <-exited:
	case <-wait.C:
	}
	wait.Stop()
	killed := make(map[proc.ID]bool)
	for range maxKillRounds {
		n, spared := g.signal(leader, pgid, killed, unix.SIGKILL)
		leaderSpared = spared
		if n == 0 {
			break
		}
	}
	return leaderSpared
}

// signal sends sigs to every live member of the group pgid started no
// earlier than the script leader, except the spared, the protected and
// those in done, and adds those signalled to done (when not nil). It
// returns how many it signalled and whether the leader is spared. Without
// a snapshot nothing can be spared and nothing but the leader is known:
// the leader alone is signalled.
func (g groupKill) signal(leader proc.ID, pgid int, done map[proc.ID]bool, sigs ...unix.Signal) (n int, leaderSpared bool) {
	send := func(id proc.ID) {
		if done[id] || g.protect.check(id.Pid) != nil {
			return
		}
		for _, sig := range sigs {
			if proc.Signal(id, sig) != nil {
				return
			}
		}
		n++
		if done != nil {
			done[id] = true
		}
	}
	var snap *snapshot
	err := errors.New("no scanner")
	if g.scan != nil {
		snap, err = g.scan()
	}
	if err != nil {
		send(leader)
		return n, false
	}
	spare := spared(snap, g.match(snap.all), pgid, leader.Pid)
	for _, p := range snap.all {
		if p.PGid == pgid && !p.Dead() && p.Start >= leader.Start && !spare[p.Pid] {
			send(p.ID)
		}
	}
	return n, spare[leader.Pid]
}

// spared returns the pids a kill of the group pgid (led by the script
// leader) leaves alone: the processes found for the entry, their
// descendants, and their ancestors in the group up to the script,
// excluded unless it is one of them.
func spared(snap *snapshot, found []proc.Info, pgid, leader int) map[int]bool {
	out := make(map[int]bool)
	for _, p := range found {
		out[p.Pid] = true
		for _, d := range snap.descendants(p.Pid) {
			out[d.Pid] = true
		}
		for pp := p.PPid; pp != leader && !out[pp]; {
			a, ok := snap.get(pp)
			if !ok || a.PGid != pgid {
				break
			}
			out[pp] = true
			pp = a.PPid
		}
	}
	return out
}
