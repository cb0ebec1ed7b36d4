package proc

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrClosed reports a Watch on a closed Watcher.
var ErrClosed = errors.New("watcher closed")

// Event is the death of a watched process.
type Event struct {
	ID ID
	// Zombie is true when /proc/PID/stat still showed 'Z' as the event
	// fired: the process exited and its parent has not reaped it.
	Zombie bool
}

// Watcher delivers death events for any processes, started by pcheck or
// not, through pidfds: one epoll instance and one goroutine serve every
// watched process, however many. A pidfd turns readable when its process
// exits, which for a process whose parent does not reap it is when it turns
// zombie, so one event covers death and zombie.
type Watcher struct {
	epfd int
	wake int // eventfd that wakes the loop for Close
	done chan struct{}

	mu      sync.Mutex
	closed  bool
	next    uint64            // token of the next watch; 0 is the wake eventfd
	watches map[uint64]*watch // by token
}

// watch is one watched process.
type watch struct {
	id ID
	fd int
	fn func(Event)
}

// wakeToken is the epoll token of the wake eventfd.
const wakeToken = 0

// NewWatcher starts a watcher. It fails where pidfds are not supported
// (PidfdSupported).
func NewWatcher() (*Watcher, error) {
	if !PidfdSupported() {
		return nil, fmt.Errorf("proc: watcher: pidfd: %w", unix.ENOSYS)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("proc: watcher: epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("proc: watcher: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, epollEvent(wakeToken)); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("proc: watcher: epoll_ctl: %w", err)
	}
	w := &Watcher{
		epfd:    epfd,
		wake:    wake,
		done:    make(chan struct{}),
		next:    wakeToken + 1,
		watches: make(map[uint64]*watch),
	}
	go w.loop()
	return w, nil
}

// epollEvent returns a readability event carrying token as its data.
func epollEvent(token uint64) *unix.EpollEvent {
	return &unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLONESHOT,
		Fd:     int32(uint32(token)),
		Pad:    int32(uint32(token >> 32)),
	}
}

// eventToken returns the token that epollEvent stored in ev.
func eventToken(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// Watch calls fn once, from the watcher's goroutine, when the process id
// exits or becomes a zombie; a process that is already a zombie fires at
// once. fn must be short (hand work off) and must not call Close. The error
// is ErrNotFound (errors.Is) when the process is already gone or its pid
// reused, ErrClosed after Close.
//
// cancel stops the watch and closes its pidfd; it may be called any number
// of times, from any goroutine, fn included. fn does not run after cancel
// returns unless the event was already being delivered.
func (w *Watcher) Watch(id ID, fn func(Event)) (cancel func(), err error) {
	fd, err := openPidfd(id)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		unix.Close(fd)
		return nil, fmt.Errorf("proc: watch pid %d: %w", id.Pid, ErrClosed)
	}
	token := w.next
	w.next++
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, epollEvent(token)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("proc: watch pid %d: epoll_ctl: %w", id.Pid, err)
	}
	w.watches[token] = &watch{id: id, fd: fd, fn: fn}
	return func() { w.remove(token) }, nil
}

// remove ends the watch token, if it is still on.
func (w *Watcher) remove(token uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt, ok := w.watches[token]; ok {
		delete(w.watches, token)
		unix.Close(wt.fd) // closing also takes it out of the epoll set
	}
}

// Len returns the number of processes being watched.
func (w *Watcher) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watches)
}

// Close stops the watcher: no callback runs after it returns, and every
// pidfd is closed. Calling it again does nothing.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	for token, wt := range w.watches {
		delete(w.watches, token)
		unix.Close(wt.fd)
	}
	_, err := unix.Write(w.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("proc: close watcher: wake: %w", err)
	}
	<-w.done
	unix.Close(w.epfd)
	unix.Close(w.wake)
	return nil
}

// loop waits for pidfds to turn readable and delivers their events until
// Close.
func (w *Watcher) loop() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// Only a closed or broken epoll descriptor gets here; there
			// is nothing left to wait on.
			return
		}
		for i := range n {
			token := eventToken(&events[i])
			if token == wakeToken {
				w.mu.Lock()
				closed := w.closed
				w.mu.Unlock()
				if closed {
					return
				}
				continue
			}
			if ev, fn, ok := w.take(token); ok {
				fn(ev)
			}
		}
	}
}

// take ends the watch token whose pidfd fired and returns its event and
// callback; ok is false when the watch was cancelled meanwhile.
func (w *Watcher) take(token uint64) (Event, func(Event), bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wt, ok := w.watches[token]
	if !ok {
		return Event{}, nil, false
	}
	delete(w.watches, token)
	unix.Close(wt.fd)
	ev := Event{ID: wt.id}
	if start, state, err := startOf(wt.id.Pid); err == nil && start == wt.id.Start && state == 'Z' {
		ev.Zombie = true
	}
	return ev, wt.fn, true
}
