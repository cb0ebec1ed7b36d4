package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// listener is one TCP socket in LISTEN state.
type listener struct {
	local netip.AddrPort
	inode uint64
	// queue is the number of connections waiting in the accept queue;
	// backlog the most it holds, 0 when unknown (/proc/net/tcp shows only
	// the queue).
	queue, backlog uint32
	// v6only: an AF_INET6 socket with IPV6_V6ONLY, which serves no IPv4
	// address even bound to ::. Known from sock_diag only.
	v6only bool
}

// listenDumpAge is how long one dump of the listening sockets serves
// further _bi_listen attempts: the attempts of one tick of the scheduler
// share one dump. Only a listener found (and held by the process tree)
// is taken from a reused dump; "not listening" is always decided on a
// dump made for the attempt.
const listenDumpAge = 50 * time.Millisecond

// listenDump caches the TCP sockets in LISTEN state of pcheck's network
// namespace, read by one sock_diag netlink dump (both families).
type listenDump struct {
	// dump reads the listeners, adding each to list; buf is a reusable
	// receive buffer. nil: dumpSockDiag.
	dump func(buf []byte, deadline time.Time, add func(listener)) ([]byte, error)

	mu    sync.Mutex
	at    time.Time // when list was read; zero: never
	list  []listener
	buf   []byte
	dumps int // dumps made, for tests
	// off is the error that showed sock_diag unusable for good (EPERM,
	// EPROTONOSUPPORT: see permanentDiagError); once set, no netlink
	// socket is opened again and every find returns it.
	off error
}

// sharedListens is the dump shared by every _bi_listen probe.
var sharedListens = &listenDump{}

// find calls each for every listener of a dump no older than maxAge (a
// new one when it is). fresh tells that the dump was made by this call. An
// error means that sock_diag cannot be used, this time or (off) for good.
func (d *listenDump) find(maxAge time.Duration, deadline time.Time, each func(listener)) (fresh bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.off != nil {
		return false, d.off
	}
	if d.at.IsZero() || maxAge <= 0 || time.Since(d.at) > maxAge {
		dump := d.dump
		if dump == nil {
			dump = dumpSockDiag
		}
		list := d.list[:0]
		d.at = time.Time{}
		buf, err := dump(d.buf, deadline, func(l listener) { list = append(list, l) })
		d.buf, d.list = buf, list
		if err != nil {
			if permanentDiagError(err) {
				d.off = err
			}
			return false, err
		}
		d.at, fresh = time.Now(), true
		d.dumps++
	}
	for _, l := range d.list {
		each(l)
	}
	return fresh, nil
}

// permanentDiagError reports whether a dump's error means that sock_diag
// will never work in this process: the netlink socket or the request
// refused (EPERM, EACCES: seccomp, an LSM), netlink or NETLINK_SOCK_DIAG
// missing from the kernel (EAFNOSUPPORT, EPROTONOSUPPORT), or no TCP
// handler for the dump (ENOENT: no inet_diag/tcp_diag, the kernel having
// tried to load it). Lack of descriptors or memory, a timeout or a cut
// dump are not: the next attempt tries again.
func permanentDiagError(err error) bool {
	for _, errno := range [...]unix.Errno{unix.EPERM, unix.EACCES, unix.EAFNOSUPPORT, unix.EPROTONOSUPPORT, unix.ENOENT} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// Layout of the sock_diag messages (linux/inet_diag.h, linux/netlink.h).
const (
	sizeofNlMsghdr      = 16
	sizeofInetDiagReqV2 = 56
	sizeofInetDiagMsg   = 72
	tcpfListen          = 1 << tcpListen
	diagBufSize         = 64 << 10
	// inetDiagSKV6Only is the INET_DIAG_SKV6ONLY attribute (a u8): the
	// kernel adds it to every AF_INET6 socket in LISTEN state.
	inetDiagSKV6Only = 11
)

// diagTimeout bounds a dump when the attempt's deadline is later or
// absent: the dump is shared, and an attempt waiting on another's dump
// must not wait for ever. A dump of the listening table takes well under
// a millisecond.
const diagTimeout = 2 * time.Second

// errDiagTimeout: the kernel did not answer before the dump's deadline.
var errDiagTimeout = errors.New("sock_diag: no reply in time")

// diagUntil is the deadline of a dump for an attempt with deadline (zero:
// none): the attempt's, or diagTimeout from now if that is sooner.
func diagUntil(deadline time.Time) time.Time {
	until := time.Now().Add(diagTimeout)
	if !deadline.IsZero() && deadline.Before(until) {
		return deadline
	}
	return until
}

// dumpSockDiag reads the LISTEN TCP sockets, IPv4 and IPv6, of pcheck's
// network namespace with SOCK_DIAG_BY_FAMILY requests on a NETLINK_SOCK_DIAG
// socket, as ss(8) does, and adds each to add. The kernel walks only its
// table of listening sockets, so the cost does not grow with the number of
// connections on the machine. buf is reused as the receive buffer. The
// dump ends by deadline (zero: none) and within diagTimeout.
func dumpSockDiag(buf []byte, deadline time.Time, add func(listener)) ([]byte, error) {
	if len(buf) < diagBufSize {
		buf = make([]byte, diagBufSize)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return buf, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	until := diagUntil(deadline)
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	for i, family := range [...]uint8{unix.AF_INET, unix.AF_INET6} {
		seq := uint32(i + 1)
		var req [sizeofNlMsghdr + sizeofInetDiagReqV2]byte
		binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
		binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
		binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
		binary.NativeEndian.PutUint32(req[8:], seq)
		r := req[sizeofNlMsghdr:]
		r[0], r[1] = family, unix.IPPROTO_TCP
		binary.NativeEndian.PutUint32(r[4:], tcpfListen) // idiag_states
		if err := unix.Sendto(fd, req[:], 0, kernel); err != nil {
			return buf, os.NewSyscallError("sendto", err)
		}
		err := readDiag(fd, buf, seq, until, add)
		if family == unix.AF_INET6 && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EAFNOSUPPORT)) {
			err = nil // no IPv6 on this host: no IPv6 listener
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// readDiag reads the replies to request seq up to NLMSG_DONE, by until.
// A dump the kernel cut short (an errno in NLMSG_DONE) or that the table
// changed under (NLM_F_DUMP_INTR) is an error: it may lack listeners.
func readDiag(fd int, buf []byte, seq uint32, until time.Time, add func(listener)) error {
	for {
		left := time.Until(until)
		if left <= 0 {
			return errDiagTimeout
		}
		tv := unix.NsecToTimeval(max(left, time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return errDiagTimeout
		}
		if err != nil {
			return os.NewSyscallError("recvfrom", err)
		}
		for b := buf[:n]; len(b) >= sizeofNlMsghdr; {
			size := binary.NativeEndian.Uint32(b[0:])
			typ := binary.NativeEndian.Uint16(b[4:])
			flags := binary.NativeEndian.Uint16(b[6:])
			mseq := binary.NativeEndian.Uint32(b[8:])
			if size < sizeofNlMsghdr || int(size) > len(b) {
				return fmt.Errorf("sock_diag: bad message length %d", size)
			}
			msg := b[sizeofNlMsghdr:size]
			if aligned := (size + 3) &^ 3; int(aligned) <= len(b) {
				b = b[aligned:]
			} else {
				b = b[len(b):]
			}
			if mseq != seq {
				continue // not ours
			}
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				return errors.New("sock_diag: dump interrupted (NLM_F_DUMP_INTR)")
			}
			switch typ {
			case unix.NLMSG_DONE:
				// Its payload is the dump's errno, as iproute2 reads it
				// ("Dump terminated").
				if len(msg) >= 4 {
					if errno := -int32(binary.NativeEndian.Uint32(msg)); errno > 0 {
						return fmt.Errorf("sock_diag: dump terminated: %w", unix.Errno(errno))
					}
				}
				return nil
			case unix.NLMSG_ERROR:
				if len(msg) < 4 {
					return errors.New("sock_diag: short error message")
				}
				if errno := -int32(binary.NativeEndian.Uint32(msg)); errno != 0 {
					return os.NewSyscallError("sock_diag", unix.Errno(errno))
				}
				return nil
			case unix.SOCK_DIAG_BY_FAMILY:
				if l, ok := parseDiagMsg(msg); ok {
					add(l)
				}
			}
		}
	}
}

// parseDiagMsg reads an inet_diag_msg: family, state, timer, retrans, the
// socket id (sport and dport big-endian, src and dst 16 bytes each, if,
// cookie), expires, rqueue, wqueue, uid, inode. For a LISTEN socket rqueue
// is the accept queue's length and wqueue its limit. The attributes that
// follow give v6only (INET_DIAG_SKV6ONLY).
func parseDiagMsg(m []byte) (listener, bool) {
	if len(m) < sizeofInetDiagMsg || m[1] != tcpListen {
		return listener{}, false
	}
	port := binary.BigEndian.Uint16(m[4:])
	var addr netip.Addr
	switch m[0] {
	case unix.AF_INET:
		addr = netip.AddrFrom4([4]byte(m[8:12]))
	case unix.AF_INET6:
		addr = netip.AddrFrom16([16]byte(m[8:24]))
	default:
		return listener{}, false
	}
	l := listener{
		local:   netip.AddrPortFrom(addr, port),
		queue:   binary.NativeEndian.Uint32(m[56:]),
		backlog: binary.NativeEndian.Uint32(m[60:]),
		inode:   uint64(binary.NativeEndian.Uint32(m[68:])),
	}
	for a := m[sizeofInetDiagMsg:]; len(a) >= unix.SizeofNlAttr; {
		size := int(binary.NativeEndian.Uint16(a[0:]))
		typ := binary.NativeEndian.Uint16(a[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if size < unix.SizeofNlAttr || size > len(a) {
			break
		}
		if typ == inetDiagSKV6Only && size > unix.SizeofNlAttr {
			l.v6only = a[unix.SizeofNlAttr] != 0
		}
		a = a[min((size+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1), len(a)):]
	}
	return l, true
}
