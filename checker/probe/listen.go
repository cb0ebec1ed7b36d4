package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
)

// procRoot is where the proc file system is mounted.
const procRoot = "/proc"

// tcpListen is the state number of LISTEN in /proc/net/tcp.
const tcpListen = 0x0A

// listenProber looks for a LISTEN socket held by a process tree.
type listenProber struct {
	port    int
	addr    netip.Addr // zero: any address
	addrErr error
	pids    func() ([]int, error)
	dump    *listenDump
}

// Listen returns the _bi_listen probe: OK when one of pids() holds a TCP
// socket in LISTEN state on port, and on address when it is not "" (an IPv4
// or IPv6 literal; a wildcard listener, 0.0.0.0 or ::, covers it). pids
// gives the monitored process and its descendants. No connection is made:
// the LISTEN sockets are read with one sock_diag netlink dump, shared by
// the attempts of the same few milliseconds (or, in another network
// namespace or without sock_diag, from /proc/PID/net/tcp{,6}), and matched
// to the descriptors in /proc/PID/fd. A listener missing from a dump is
// looked for in /proc before the attempt fails: a dump may skip one. A ::
// listener with IPV6_V6ONLY does not cover an IPv4 address, except read
// from /proc alone, which does not show the option. An OK Result carries
// the listener's accept queue and backlog.
//
// No LISTEN socket on the port is a failure. An attempt that cannot tell
// is Unknown: pids cannot be listed, a socket table cannot be read, or
// there is a listener on the port but the descriptors of a process of the
// tree could not be read (EACCES, EMFILE) and no readable one holds it.
func Listen(port int, address string, pids func() ([]int, error)) Prober {
	p := &listenProber{port: port, pids: pids, dump: sharedListens}
	if address != "" {
		a, err := netip.ParseAddr(address)
		if err != nil {
			p.addrErr = fmt.Errorf("listen address: %w", err)
		}
		p.addr = a.Unmap().WithZone("")
	}
	return p
}

// Run performs one attempt.
func (p *listenProber) Run(ctx context.Context) Result {
	start := time.Now()
	if p.addrErr != nil {
		return failure(ctx, start, broken(p.addrErr))
	}
	if err := ctx.Err(); err != nil {
		return failure(ctx, start, err)
	}
	pids, err := p.pids()
	if err != nil {
		return failure(ctx, start, broken(fmt.Errorf("process tree: %w", err)))
	}
	r, src, refused := p.attempt(ctx, start, pids, sharedDump, nil)
	if !r.OK && src == sharedDump {
		// A listener may have come up since the shared dump: decide
		// "not listening" on a dump of this attempt's own.
		r, src, refused = p.attempt(ctx, start, pids, ownDump, nil)
	}
	if src == ownDump && errors.Is(r.Err, ErrNotListening) {
		// The kernel resumes a dump of its listening hash by a count
		// within a bucket: a socket closed in the same bucket between two
		// batches makes it skip one that stays. Confirm in /proc, on the
		// failure path only.
		r, _, _ = p.attempt(ctx, start, pids, procNet, refused)
	}
	return r
}

// listenSource is where an attempt read the listening sockets from.
type listenSource int

const (
	sharedDump listenSource = iota // sock_diag, a dump of the last listenDumpAge
	ownDump                        // sock_diag, a dump made for the attempt
	procNet                        // /proc/PID/net/tcp{,6}
)

// attempt looks for the listener in the sockets read from want (sock_diag
// may fall back to procNet: src is where they came from). judged are
// sockets on the port that a sock_diag dump found not serving the address
// (a v6only ::): /proc, which cannot tell, does not take them back.
// refused are those of this attempt's dump.
func (p *listenProber) attempt(ctx context.Context, start time.Time, pids []int, want listenSource, judged map[uint64]bool) (r Result, src listenSource, refused map[uint64]bool) {
	inodes, refused, src, err := p.listeners(ctx, pids, want)
	if err != nil {
		return failure(ctx, start, broken(err)), src, nil
	}
	for inode := range judged {
		delete(inodes, inode)
	}
	var readErr error
	if len(inodes) > 0 {
		for _, pid := range pids {
			if err := ctx.Err(); err != nil {
				return failure(ctx, start, err), src, refused
			}
			found, err := holdsSocket(pid, inodes)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				readErr = err // a pid we may not read: say so if nothing is found
			}
			if found != 0 {
				l := inodes[found]
				r := success(start, fmt.Sprintf("pid %d listens on %s", pid, l.local))
				r.AcceptQueue, r.Backlog = int(l.queue), int(l.backlog)
				return r, src, refused
			}
		}
	}
	if readErr != nil {
		// A listener is there and a process we could not read may hold it.
		return failure(ctx, start, broken(readErr)), src, refused
	}
	err = fmt.Errorf("%w: port %d", ErrNotListening, p.port)
	if p.addr.IsValid() {
		err = fmt.Errorf("%w: %s", ErrNotListening, netip.AddrPortFrom(p.addr, uint16(p.port)))
	}
	return failure(ctx, start, err), src, refused
}

// ownNetns names pcheck's network namespace ("net:[4026531840]"), "" when
// it cannot be read.
var ownNetns = sync.OnceValue(func() string {
	ns, _ := os.Readlink(procRoot + "/self/ns/net")
	return ns
})

// listeners returns the LISTEN sockets on the port (and address) by inode,
// in the network namespace of the first live pid. In pcheck's own
// namespace and unless want is procNet they come from the sock_diag dump
// (src sharedDump when it was not made for this attempt; refused the
// sockets on the port it found not serving the address); elsewhere, or when
// sock_diag cannot be used (EPERM, EPROTONOSUPPORT, no inet_diag module),
// from /proc/PID/net/tcp and tcp6.
func (p *listenProber) listeners(ctx context.Context, pids []int, want listenSource) (inodes map[uint64]listener, refused map[uint64]bool, src listenSource, err error) {
	for _, pid := range pids {
		inodes := make(map[uint64]listener)
		ns, err := os.Readlink(fmt.Sprintf("%s/%d/ns/net", procRoot, pid))
		if errors.Is(err, fs.ErrNotExist) {
			continue // exited meanwhile
		}
		if err == nil && ns != "" && ns == ownNetns() && want != procNet {
			maxAge := listenDumpAge
			if want == ownDump {
				maxAge = 0
			}
			deadline, _ := ctx.Deadline()
			var refused map[uint64]bool
			fresh, err := p.dump.find(maxAge, deadline, func(l listener) {
				switch {
				case p.keep(l):
					inodes[l.inode] = l
				case int(l.local.Port()) == p.port:
					if refused == nil {
						refused = make(map[uint64]bool)
					}
					refused[l.inode] = true
				}
			})
			if err == nil {
				if fresh {
					return inodes, refused, ownDump, nil
				}
				return inodes, refused, sharedDump, nil
			}
			clear(inodes) // sock_diag unavailable: read /proc
		}
		err = p.scan(fmt.Sprintf("%s/%d/net/tcp", procRoot, pid), inodes)
		if errors.Is(err, fs.ErrNotExist) {
			continue // exited meanwhile
		}
		if err != nil {
			return nil, nil, procNet, err
		}
		// tcp6 is absent when IPv6 is disabled.
		if err := p.scan(fmt.Sprintf("%s/%d/net/tcp6", procRoot, pid), inodes); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, procNet, err
		}
		return inodes, nil, procNet, nil
	}
	return nil, nil, want, nil
}

// scan adds to inodes the LISTEN entries of one /proc/net/tcp file that
// match the port and address.
func (p *listenProber) scan(path string, inodes map[uint64]listener) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		e, ok := parseTCPLine(sc.Bytes())
		if !ok || e.state != tcpListen {
			continue
		}
		if l := (listener{local: e.local, inode: e.inode, queue: e.rxQueue}); p.keep(l) {
			inodes[e.inode] = l
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// keep reports whether l is on the wanted port and serves the address.
func (p *listenProber) keep(l listener) bool {
	return int(l.local.Port()) == p.port && p.addrMatches(l)
}

// addrMatches reports whether listener l serves the wanted address.
func (p *listenProber) addrMatches(l listener) bool {
	if !p.addr.IsValid() {
		return true
	}
	a := l.local.Addr().Unmap()
	if a == p.addr {
		return true
	}
	// 0.0.0.0 serves every IPv4 address; :: serves both unless v6only
	// (which /proc/net/tcp6 does not show: there :: serves both).
	return a.IsUnspecified() && (p.addr.Is4() && !l.v6only || a.Is6() && p.addr.Is6())
}

// tcpEntry is one line of /proc/net/tcp or /proc/net/tcp6.
type tcpEntry struct {
	local   netip.AddrPort
	state   uint8
	rxQueue uint32 // of a LISTEN socket: its accept queue's length
	inode   uint64
}

// parseTCPLine reads "sl local rem st tx:rx tr:when retr uid timeout inode".
func parseTCPLine(line []byte) (tcpEntry, bool) {
	var fields [10][]byte
	for i := range fields {
		line = bytes.TrimLeft(line, " ")
		end := bytes.IndexByte(line, ' ')
		if end < 0 {
			end = len(line)
		}
		fields[i], line = line[:end], line[end:]
		if len(fields[i]) == 0 {
			return tcpEntry{}, false
		}
	}
	local, ok := parseHexAddrPort(fields[1])
	if !ok {
		return tcpEntry{}, false
	}
	state, err := strconv.ParseUint(string(fields[3]), 16, 8)
	if err != nil {
		return tcpEntry{}, false
	}
	_, rx, ok := bytes.Cut(fields[4], []byte(":"))
	if !ok {
		return tcpEntry{}, false
	}
	rxQueue, err := strconv.ParseUint(string(rx), 16, 32)
	if err != nil {
		return tcpEntry{}, false
	}
	inode, err := strconv.ParseUint(string(fields[9]), 10, 64)
	if err != nil {
		return tcpEntry{}, false
	}
	return tcpEntry{local: local, state: uint8(state), rxQueue: uint32(rxQueue), inode: inode}, true
}

// parseHexAddrPort reads "0100007F:1F90": the address as 32-bit words in
// host byte order, the port in hex.
func parseHexAddrPort(b []byte) (netip.AddrPort, bool) {
	colon := bytes.IndexByte(b, ':')
	if colon < 0 {
		return netip.AddrPort{}, false
	}
	hexAddr := b[:colon]
	port, err := strconv.ParseUint(string(b[colon+1:]), 16, 16)
	if err != nil || (len(hexAddr) != 8 && len(hexAddr) != 32) {
		return netip.AddrPort{}, false
	}
	var raw [16]byte
	for i := 0; i < len(hexAddr)/8; i++ {
		w, err := strconv.ParseUint(string(hexAddr[i*8:i*8+8]), 16, 32)
		if err != nil {
			return netip.AddrPort{}, false
		}
		binary.NativeEndian.PutUint32(raw[i*4:], uint32(w))
	}
	var addr netip.Addr
	if len(hexAddr) == 8 {
		addr = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		addr = netip.AddrFrom16(raw)
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// holdsSocket returns the inode of the first socket of inodes that pid has
// open, or 0.
func holdsSocket(pid int, inodes map[uint64]listener) (uint64, error) {
	dir := fmt.Sprintf("%s/%d/fd", procRoot, pid)
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", dir, err)
	}
	for _, name := range names {
		target, err := os.Readlink(dir + "/" + name)
		if err != nil {
			continue // closed meanwhile
		}
		inode, ok := socketInode(target)
		if !ok {
			continue
		}
		if _, ok := inodes[inode]; ok {
			return inode, nil
		}
	}
	return 0, nil
}

// socketInode reads "socket:[12345]".
func socketInode(target string) (uint64, bool) {
	const prefix, suffix = "socket:[", "]"
	if len(target) <= len(prefix)+len(suffix) || target[:len(prefix)] != prefix || target[len(target)-1] != ']' {
		return 0, false
	}
	n, err := strconv.ParseUint(target[len(prefix):len(target)-1], 10, 64)
	return n, err == nil
}
