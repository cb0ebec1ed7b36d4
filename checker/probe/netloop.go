package probe

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The TCP and plain HTTP probes run on one event loop: one goroutine, one
// epoll descriptor, a heap of the attempts' deadlines whose earliest bounds
// the wait, and an eventfd that wakes it for new attempts and cancels. The
// goroutine waits for the epoll descriptor in Go's poller (an epoll
// descriptor is itself pollable) rather than in a blocking epoll_wait: the
// wait holds no thread, and the goroutine an attempt's end wakes runs on
// the loop's thread (measured with BenchmarkStartTCP, a blocking
// epoll_wait took 131 us an attempt, this 92 us).
//
// An attempt holds no goroutine while it waits for its peer, and
// allocates nothing in the steady state: its slot (its state and its
// status-line buffer) is reused from a free list; the request bytes, the
// socket addresses and the "connected to ADDR" details are built with the
// probe; the status line's string is the previous attempt's when the same.
// With expectations (ExpectStatus, ExpectHeader, ExpectBody) the answer is
// gathered in the slot's buffer and matched by the same code as over TLS.
//
// An attempt: socket(SOCK_NONBLOCK), SO_LINGER {1, 0}, connect; EINPROGRESS
// waits for EPOLLOUT (then SO_ERROR if epoll reports an error). TCP then
// closes. HTTP writes its request, waits for EPOLLIN and reads until the
// status line (or, with expectations, what they need), then closes.

// Completion receives the Result of an attempt started with Start. It is
// called on the event loop's goroutine, once per attempt, never from within
// Start, and must return quickly: record the result, schedule the next
// attempt, hand the result on.
type Completion interface {
	Complete(Result)
}

// Starter is a Prober whose attempts the event loop drives: Start begins an
// attempt and returns at once. The attempt ends by deadline (the zero time
// for none). Run is Start and a wait for the Completion.
type Starter interface {
	Prober
	Start(deadline time.Time, done Completion) Handle
}

// Handle names an attempt started with Start.
type Handle struct {
	s   *slot
	gen uint64
}

// Cancel ends the attempt if it is still in flight: its connection is
// closed and its Completion receives a failed Result whose Err is
// context.Canceled. After the attempt has ended Cancel does nothing.
func (h Handle) Cancel() { h.cancel(context.Canceled) }

func (h Handle) cancel(err error) {
	if h.s != nil {
		h.s.loop.cancel(h, err)
	}
}

// attempt states.
const (
	idle = iota // released, or started and not yet begun
	connecting
	writing
	reading
)

// slot is one attempt's state. Start fills it under the loop's lock; the
// loop goroutine alone uses it then, until it is released.
type slot struct {
	loop *netLoop
	id   int32
	gen  uint64 // guarded by loop.mu; bumped when the slot is released
	// cancelErr is set by cancel (guarded by loop.mu).
	cancelErr error

	tg       *target
	http     *httpProber // nil for TCP
	deadline time.Time
	done     Completion
	start    time.Time

	state      int
	res        *resolution
	next       int // the index of the next address to try
	cur        *dest
	fd         int
	registered bool
	// sock numbers the slot's sockets: it tags their epoll events. A
	// closed socket stays in epoll while another reference to it is
	// open (a child between fork and exec holds a copy of every
	// descriptor), and its events must not be taken for those of the
	// socket that replaced it, of the same attempt (its next address)
	// or of a later one.
	sock  uint32
	first error // the first error of the service's side
	ours  error // the first of pcheck's side
	wait  time.Time
	hidx  int // in the deadline heap; -1 when not there
	wrote int
	n     int
	buf   [maxStatusLine]byte
	body  []byte // with expectations: the answer so far (capacity kept)
}

// netLoop is the event loop.
type netLoop struct {
	epfd, evfd int
	// epoll is epfd in Go's poller, where the loop goroutine waits for
	// it to have events (an epoll descriptor is itself pollable): the
	// wait holds no thread, and an attempt's end wakes its caller on the
	// same thread.
	epoll *os.File
	raw   syscall.RawConn
	// pollEvents is l.poll, made once; n the events it got, pollErr
	// the error of epoll_wait itself.
	pollEvents func(uintptr) bool
	n          int
	pollErr    error

	mu sync.Mutex
	// dead is why the loop ended (die), nil while it runs: every attempt
	// is then Unknown with it.
	dead     error
	pending  []*slot
	canceled []Handle
	free     []*slot
	slots    int  // made so far
	woken    bool // the eventfd has been written since the loop drained it

	// The loop goroutine's own.
	deadlines slotHeap
	byID      []*slot // the slots begun, by id: what epoll's events name
	events    [128]unix.EpollEvent
	starts    []*slot
	cancels   []Handle
}

// wakeID is the epoll data of the eventfd.
const wakeID = -1

// theLoop returns the event loop, started with the first probe that uses
// it (when the probe is built: before a descriptor table can be full).
var theLoop = sync.OnceValues(startLoop)

func startLoop() (*netLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, broken(os.NewSyscallError("epoll_create1", err))
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, broken(os.NewSyscallError("eventfd", err))
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeID}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, broken(os.NewSyscallError("epoll_ctl", err))
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, broken(os.NewSyscallError("fcntl", err))
	}
	l := &netLoop{epfd: epfd, evfd: evfd, epoll: os.NewFile(uintptr(epfd), "epoll")}
	l.raw, err = l.epoll.SyscallConn()
	if err != nil {
		l.epoll.Close()
		unix.Close(evfd)
		return nil, broken(err)
	}
	l.pollEvents = l.poll
	go l.run()
	return l, nil
}

// startOnLoop begins an attempt of a TCP (h nil) or HTTP probe.
func startOnLoop(tg *target, h *httpProber, deadline time.Time, done Completion) Handle {
	l, err := theLoop()
	if err != nil {
		// No loop, no goroutine to complete on: a goroutine of its own,
		// since Completion is never called from within Start.
		go done.Complete(failure(context.Background(), time.Now(), err))
		return Handle{}
	}
	return l.start(tg, h, deadline, done)
}

// start begins an attempt on l; on a loop that has ended (die), the
// attempt is Unknown at once.
func (l *netLoop) start(tg *target, h *httpProber, deadline time.Time, done Completion) Handle {
	start := time.Now()
	l.mu.Lock()
	if l.dead != nil {
		err := l.dead
		l.mu.Unlock()
		go done.Complete(failure(context.Background(), start, err))
		return Handle{}
	}
	var s *slot
	if n := len(l.free); n > 0 {
		s = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		s = &slot{loop: l, id: int32(l.slots), hidx: -1}
		l.slots++
	}
	// s.state stays idle until begin: the loop reads it, without the
	// lock, for the events of a stale registration naming s.
	s.tg, s.http, s.deadline, s.done, s.start = tg, h, deadline, done, start
	l.pending = append(l.pending, s)
	hd := Handle{s: s, gen: s.gen}
	l.wakeLocked()
	l.mu.Unlock()
	return hd
}

// wakeOne is what the eventfd is written.
var wakeOne = [8]byte{1}

func (l *netLoop) wakeLocked() {
	if !l.woken {
		l.woken = true
		_, _ = unix.Write(l.evfd, wakeOne[:])
	}
}

func (l *netLoop) cancel(h Handle, err error) {
	l.mu.Lock()
	if h.s.gen == h.gen && h.s.cancelErr == nil { // not ended, not yet cancelled
		h.s.cancelErr = err
		l.canceled = append(l.canceled, h)
		l.wakeLocked()
	}
	l.mu.Unlock()
}

// run is the loop goroutine.
func (l *netLoop) run() {
	var drain [8]byte
	for {
		var wait time.Time // none
		if len(l.deadlines) > 0 {
			wait = l.deadlines[0].wait
		}
		if err := l.epoll.SetReadDeadline(wait); err != nil {
			l.die(err) // the descriptor is not in Go's poller: a bug
			return
		}
		l.n, l.pollErr = 0, nil
		err := l.raw.Read(l.pollEvents)
		if err == nil {
			err = l.pollErr
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			l.die(err)
			return
		}
		woke := false
		for i := range l.n {
			ev := &l.events[i]
			if ev.Fd == wakeID {
				woke = true
				continue
			}
			s := l.byID[ev.Fd]
			if s.state < connecting || uint32(ev.Pad) != s.sock {
				continue
			}
			s.ready(ev.Events)
		}
		now := time.Now()
		for len(l.deadlines) > 0 && !l.deadlines[0].wait.After(now) {
			s := heap.Pop(&l.deadlines).(*slot)
			s.expired(now)
		}
		if !woke {
			continue
		}
		_, _ = unix.Read(l.evfd, drain[:])
		l.mu.Lock()
		l.woken = false
		l.starts, l.pending = l.pending, l.starts[:0]
		l.cancels, l.canceled = l.canceled, l.cancels[:0]
		l.mu.Unlock()
		for i, s := range l.starts {
			l.starts[i] = nil
			for int(s.id) >= len(l.byID) {
				l.byID = append(l.byID, nil)
			}
			l.byID[s.id] = s
			s.begin()
		}
		for i, h := range l.cancels {
			l.cancels[i] = Handle{}
			l.mu.Lock()
			err, ok := h.s.cancelErr, h.s.gen == h.gen
			l.mu.Unlock()
			if ok && h.s.state >= connecting { // begun (starts come first), not ended
				h.s.fail(err)
			}
		}
	}
}

// poll is the callback of the wait in Go's poller: it asks epoll itself,
// without waiting, each time it is called (Go's poller only says when to
// ask again), and reports whether there are events.
func (l *netLoop) poll(uintptr) bool {
	for {
		n, err := unix.EpollWait(l.epfd, l.events[:], 0)
		switch err {
		case nil:
			l.n = n
			return n > 0
		case unix.EINTR:
		default:
			l.pollErr = os.NewSyscallError("epoll_wait", err) // EBADF, EFAULT, EINVAL: a bug
			return true
		}
	}
}

// die ends the loop after an error of its own wait, which only a bug can
// cause: rather than crash pcheck, and with it the watch of every process,
// every attempt in flight or to come is Unknown, with the error, and the
// monitors say so ("Monitor unknown"); a pcheck restart makes a new loop.
func (l *netLoop) die(err error) {
	err = broken(fmt.Errorf("probe event loop: %w", err))
	l.mu.Lock()
	l.dead = err
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, s := range pending {
		s.fd = -1 // not begun: no socket yet
		s.finish(failure(context.Background(), s.start, err))
	}
	for _, s := range l.byID {
		if s != nil && s.state >= connecting {
			s.finish(failure(context.Background(), s.start, err))
		}
	}
}

// begin starts the attempt on its first address.
func (s *slot) begin() {
	s.res = s.tg.res.Load()
	s.next, s.first, s.ours, s.fd, s.registered = 0, nil, nil, -1, false
	s.wrote, s.n, s.body = 0, 0, s.body[:0]
	s.state = connecting
	s.dial()
}

// note keeps the error of an address that failed: the attempt's error is
// the first address's that the service gave, or the first of pcheck's side
// when no address got that far ("localhost" on a host without IPv6, whose
// server refuses on 127.0.0.1, is a failure, not an Unknown attempt).
func (s *slot) note(err error) {
	switch {
	case !pcheckSide(err) && s.first == nil:
		s.first = err
	case pcheckSide(err) && s.ours == nil:
		s.ours = err
	}
}

// dial tries the addresses left, one after another, until one connects or
// is waited for.
func (s *slot) dial() {
	dests := s.res.dests
	for s.next < len(dests) {
		d := &dests[s.next]
		left := len(dests) - s.next
		s.next++
		partial, err := partialDeadline(time.Now(), s.deadline, left)
		if err != nil {
			s.note(s.tg.opError(&d.ap, err))
			break
		}
		if d.saErr != nil {
			s.note(s.tg.opError(&d.ap, d.saErr))
			continue
		}
		fd, err := unix.Socket(d.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err != nil {
			s.note(s.tg.opError(&d.ap, os.NewSyscallError("socket", err)))
			continue
		}
		if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &linger); err != nil {
			unix.Close(fd)
			s.note(s.tg.opError(&d.ap, broken(os.NewSyscallError("setsockopt SO_LINGER", err))))
			continue
		}
		s.fd, s.cur = fd, d
		s.sock++
		switch err := unix.Connect(fd, d.sa); err {
		case nil:
			s.connected()
			return
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			// The connection proceeds in the background: wait for the
			// socket to become writable, then ask how it went.
			if err := s.watch(unix.EPOLLOUT); err != nil {
				s.finish(failure(context.Background(), s.start, err))
				return
			}
			s.arm(partial)
			return
		default:
			s.closeFD()
			s.note(s.tg.opError(&d.ap, os.NewSyscallError("connect", err)))
		}
	}
	err := s.first
	if err == nil {
		err = s.ours
	}
	if err == nil {
		err = s.res.err
	}
	if err == nil {
		err = s.tg.opError(nil, errors.New("no suitable address found"))
	}
	s.finish(failure(context.Background(), s.start, err))
}

// watch makes epoll report events of the socket.
func (s *slot) watch(events uint32) error {
	op := unix.EPOLL_CTL_ADD
	if s.registered {
		op = unix.EPOLL_CTL_MOD
	}
	ev := unix.EpollEvent{Events: events, Fd: s.id, Pad: int32(s.sock)}
	if err := unix.EpollCtl(s.loop.epfd, op, s.fd, &ev); err != nil {
		return broken(os.NewSyscallError("epoll_ctl", err))
	}
	s.registered = true
	return nil
}

// arm makes t the deadline of the current wait (none for the zero time).
func (s *slot) arm(t time.Time) {
	h := &s.loop.deadlines
	switch {
	case t.IsZero():
		if s.hidx >= 0 {
			heap.Remove(h, s.hidx)
		}
	case s.hidx >= 0:
		s.wait = t
		heap.Fix(h, s.hidx)
	default:
		s.wait = t
		heap.Push(h, s)
	}
}

// ready handles the events epoll reported for the socket.
func (s *slot) ready(events uint32) {
	switch s.state {
	case connecting:
		// epoll reports a failed connection with EPOLLERR or EPOLLHUP:
		// a bare EPOLLOUT is an established one, and needs no SO_ERROR
		// query.
		if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			errno, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && errno != 0 {
				err = syscall.Errno(errno)
			}
			if err != nil {
				s.closeFD()
				s.note(s.tg.opError(&s.cur.ap, os.NewSyscallError("connect", err)))
				s.dial()
				return
			}
		}
		s.connected()
	case writing:
		s.write()
	case reading:
		s.read()
	}
}

// expired handles the deadline of the current wait, whose heap entry is
// gone.
func (s *slot) expired(now time.Time) {
	if s.state == connecting && (s.deadline.IsZero() || now.Before(s.deadline)) {
		// The address's share of the time is over: the next one.
		s.closeFD()
		s.note(s.tg.opError(&s.cur.ap, os.ErrDeadlineExceeded))
		s.dial()
		return
	}
	s.fail(os.ErrDeadlineExceeded)
}

// fail ends the attempt with err (the deadline passed, or a cancel), as
// the phase it is in reports it.
func (s *slot) fail(err error) {
	switch {
	case s.state == connecting:
		err = s.tg.opError(&s.cur.ap, err)
	case s.state == reading && s.http != nil:
		if !s.http.expect.none() {
			s.finish(s.http.check(context.Background(), s.start, &replay{b: s.body, more: err}))
			return
		}
		err = s.http.statusError(err)
	}
	s.finish(failure(context.Background(), s.start, err))
}

// connected goes on once the socket is connected: TCP closes, HTTP sends
// its request.
func (s *slot) connected() {
	if s.http == nil {
		detail := s.cur.detail
		if err := s.closeFD(); err != nil {
			s.finish(failure(context.Background(), s.start, err))
			return
		}
		s.finish(success(s.start, detail))
		return
	}
	s.arm(s.deadline) // the whole attempt's from now on
	s.state = writing
	s.write()
}

// write sends what is left of the request, then waits for the reply.
func (s *slot) write() {
	req := s.http.request
	for s.wrote < len(req) {
		n, err := unix.Write(s.fd, req[s.wrote:])
		switch {
		case err == nil:
			s.wrote += n
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			if err := s.watch(unix.EPOLLOUT); err != nil {
				s.finish(failure(context.Background(), s.start, err))
			}
			return
		default:
			s.finish(failure(context.Background(), s.start, ioError("write", s.cur.ap, os.NewSyscallError("write", err))))
			return
		}
	}
	s.state = reading
	if err := s.watch(unix.EPOLLIN | unix.EPOLLRDHUP); err != nil {
		s.finish(failure(context.Background(), s.start, err))
	}
}

// read reads what the peer has sent and ends the attempt once the reply
// says enough.
func (s *slot) read() {
	p := s.http
	if !p.expect.none() {
		s.readAnswer()
		return
	}
	var n int
	var err error
	for {
		n, err = unix.Read(s.fd, s.buf[s.n:])
		if err != unix.EINTR {
			break
		}
	}
	switch {
	case err == unix.EAGAIN:
		return
	case err != nil:
		s.finish(failure(context.Background(), s.start, p.statusError(ioError("read", s.cur.ap, os.NewSyscallError("read", err)))))
		return
	}
	s.n += n
	line, err := statusLine(s.buf[:s.n], n == 0)
	switch {
	case err == errMore:
		return
	case err != nil:
		s.finish(failure(context.Background(), s.start, p.statusError(err)))
	default:
		s.finish(success(s.start, p.lineText(line)))
	}
}

// readAnswer reads the answer an attempt with expectations needs: it
// matches what has come so far against them, and waits for more while
// that is not enough to tell.
func (s *slot) readAnswer() {
	const limit = maxHeader + maxBody
	if cap(s.body) == 0 {
		s.body = make([]byte, 0, 4<<10)
	}
	if len(s.body) == cap(s.body) {
		s.body = append(s.body, 0)[:len(s.body)]
	}
	var n int
	var err error
	for {
		n, err = unix.Read(s.fd, s.body[len(s.body):min(cap(s.body), limit)])
		if err != unix.EINTR {
			break
		}
	}
	var more error = errMore
	switch {
	case err == unix.EAGAIN:
		return
	case err != nil:
		more = ioError("read", s.cur.ap, os.NewSyscallError("read", err))
	case n == 0 || len(s.body)+n == limit:
		more = io.EOF
	}
	s.body = s.body[:len(s.body)+n]
	r := s.http.check(context.Background(), s.start, &replay{b: s.body, more: more})
	if errors.Is(r.Err, errMore) {
		return
	}
	s.finish(r)
}

// closeFD closes the socket, if open (which takes it out of epoll once no
// other reference to it is open: until then sock tells its events); the
// connection is reset (SO_LINGER 0).
func (s *slot) closeFD() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd, s.registered = -1, false
	if err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// finish ends the attempt with r: the socket closed, the slot released,
// then the Completion called.
func (s *slot) finish(r Result) {
	_ = s.closeFD()
	if s.hidx >= 0 {
		heap.Remove(&s.loop.deadlines, s.hidx)
	}
	done := s.done
	l := s.loop
	l.mu.Lock()
	s.gen++
	s.state, s.cancelErr, s.done, s.tg, s.http, s.res, s.cur = idle, nil, nil, nil, nil, nil, nil
	if cap(s.body) > 8<<10 {
		s.body = nil // an unusually large answer: do not keep it
	}
	l.free = append(l.free, s)
	l.mu.Unlock()
	done.Complete(r)
}

// errMore is what replay returns at the end of what has been received
// while the peer may send more: an answer with expectations is matched
// again when more comes.
var errMore = errors.New("more of the reply is needed")

// replay reads b, then returns more: errMore while the peer may send more,
// io.EOF at the end of the answer, the error of the wait otherwise.
type replay struct {
	b    []byte
	off  int
	more error
}

func (r *replay) Read(p []byte) (int, error) {
	if r.off < len(r.b) {
		n := copy(p, r.b[r.off:])
		r.off += n
		return n, nil
	}
	return 0, r.more
}

// waiter is the Completion of Run.
type waiter chan Result

func (w waiter) Complete(r Result) { w <- r }

// runOnLoop is the Run of a Starter: an attempt on the loop, bounded by
// ctx's deadline and cancelled when ctx ends.
func runOnLoop(ctx context.Context, p Starter) Result {
	deadline, _ := ctx.Deadline()
	w := make(waiter, 1)
	h := p.Start(deadline, w)
	stop := context.AfterFunc(ctx, func() { h.cancel(ctx.Err()) })
	r := <-w
	stop()
	if !r.OK && !r.Unknown && ctx.Err() != nil {
		latency := r.Latency
		r = failure(ctx, time.Now(), r.Err)
		r.Latency = latency
	}
	return r
}

// slotHeap is a heap of slots by the deadline of their current wait.
type slotHeap []*slot

func (h slotHeap) Len() int           { return len(h) }
func (h slotHeap) Less(i, j int) bool { return h[i].wait.Before(h[j].wait) }
func (h slotHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}

func (h *slotHeap) Push(x any) {
	s := x.(*slot)
	s.hidx = len(*h)
	*h = append(*h, s)
}

func (h *slotHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	s.hidx = -1
	*h = old[:len(old)-1]
	return s
}
