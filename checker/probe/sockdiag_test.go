package probe

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// diagPair returns the two ends of a datagram socket pair: the test writes
// netlink replies into the first, readDiag reads them from the second.
func diagPair(t *testing.T) (peer, fd int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// nlMsg builds one netlink message, padded to 4 bytes.
func nlMsg(typ, flags uint16, seq uint32, payload []byte) []byte {
	size := sizeofNlMsghdr + len(payload)
	m := make([]byte, (size+3)&^3)
	binary.NativeEndian.PutUint32(m[0:], uint32(size))
	binary.NativeEndian.PutUint16(m[4:], typ)
	binary.NativeEndian.PutUint16(m[6:], flags)
	binary.NativeEndian.PutUint32(m[8:], seq)
	copy(m[sizeofNlMsghdr:], payload)
	return m
}

// doneMsg is an NLMSG_DONE carrying the dump's errno (0 or negative).
func doneMsg(seq uint32, errno int32) []byte {
	var p [4]byte
	binary.NativeEndian.PutUint32(p[:], uint32(errno))
	return nlMsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, seq, p[:])
}

// diagMsg is the inet_diag_msg of an IPv4 LISTEN socket on 127.0.0.1:port.
func diagMsg(port uint16, inode uint32) []byte {
	m := make([]byte, sizeofInetDiagMsg)
	m[0], m[1] = unix.AF_INET, tcpListen
	binary.BigEndian.PutUint16(m[4:], port)
	copy(m[8:], []byte{127, 0, 0, 1})
	binary.NativeEndian.PutUint32(m[68:], inode)
	return m
}

// A dump is complete only when its NLMSG_DONE says 0 and no message is
// marked NLM_F_DUMP_INTR: a dump the kernel cut short or that changed
// under it must not read as the whole table.
func TestReadDiagIncomplete(t *testing.T) {
	const seq = 1
	for _, tc := range []struct {
		name  string
		reply []byte
		err   bool
	}{
		{"complete", append(nlMsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI, seq, diagMsg(8080, 42)), doneMsg(seq, 0)...), false},
		{"DONE with an errno", append(nlMsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI, seq, diagMsg(8080, 42)), doneMsg(seq, -int32(unix.ENOBUFS))...), true},
		{"NLM_F_DUMP_INTR", append(nlMsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, seq, diagMsg(8080, 42)), doneMsg(seq, 0)...), true},
		{"NLM_F_DUMP_INTR on DONE", append(nlMsg(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_MULTI, seq, diagMsg(8080, 42)), nlMsg(unix.NLMSG_DONE, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, seq, make([]byte, 4))...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, fd := diagPair(t)
			if _, err := unix.Write(peer, tc.reply); err != nil {
				t.Fatal(err)
			}
			var got []listener
			err := readDiag(fd, make([]byte, diagBufSize), seq, time.Now().Add(10*time.Second), func(l listener) { got = append(got, l) })
			if tc.err {
				if err == nil {
					t.Fatalf("readDiag = nil, want an error (listeners %v)", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := netip.MustParseAddrPort("127.0.0.1:8080"); len(got) != 1 || got[0].local != want || got[0].inode != 42 {
				t.Fatalf("listeners %v, want one on %v, inode 42", got, want)
			}
		})
	}
}

// A dump for an attempt without a deadline still gives up: a reply that
// never comes ends it within diagTimeout, so that no attempt waits on
// another's dump for ever.
func TestReadDiagBounded(t *testing.T) {
	_, fd := diagPair(t)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- readDiag(fd, make([]byte, diagBufSize), 1, diagUntil(time.Time{}), func(listener) {})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, errDiagTimeout) {
			t.Fatalf("readDiag = %v, want a timeout", err)
		}
		if took := time.Since(start); took < diagTimeout/2 {
			t.Errorf("gave up after %v, want about %v", took, diagTimeout)
		}
	case <-time.After(diagTimeout + 10*time.Second):
		t.Fatalf("readDiag without a deadline did not return within %v", diagTimeout+10*time.Second)
	}
	// A caller's nearer deadline wins.
	if d := time.Now().Add(time.Second); !diagUntil(d).Equal(d) {
		t.Errorf("diagUntil(%v) = %v", d, diagUntil(d))
	}
}
