// Package sdnotify speaks systemd's notification protocol: datagrams such
// as "READY=1" or "WATCHDOG=1" sent to the unix socket named by
// NOTIFY_SOCKET (a path, or an abstract address written with a leading
// '@').
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// The states pcheck sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// ErrNoSocket is returned by New when NOTIFY_SOCKET is not set: pcheck was
// not started by systemd with Type=notify.
var ErrNoSocket = errors.New("NOTIFY_SOCKET is not set")

// Notifier sends states to the service manager.
type Notifier struct {
	addr *net.UnixAddr
	conn *net.UnixConn
}

// New returns a Notifier for the socket in NOTIFY_SOCKET.
func New() (*Notifier, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil, ErrNoSocket
	}
	return Dial(name)
}

// Dial returns a Notifier for the socket name: a path, or an abstract
// address with a leading '@'.
func Dial(name string) (*Notifier, error) {
	if name == "" || (name[0] != '/' && name[0] != '@') {
		return nil, fmt.Errorf("notify socket %q: not an absolute path or abstract address", name)
	}
	addr := &net.UnixAddr{Name: name, Net: "unixgram"}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket %s: %w", name, err)
	}
	return &Notifier{addr: addr, conn: conn}, nil
}

// Notify sends one state, e.g. Ready or "STATUS=watching 3 processes".
func (n *Notifier) Notify(state string) error {
	if _, err := n.conn.WriteToUnix([]byte(state), n.addr); err != nil {
		return fmt.Errorf("notify socket %s: %w", n.addr.Name, err)
	}
	return nil
}

// Close releases the socket.
func (n *Notifier) Close() error { return n.conn.Close() }

// WatchdogInterval returns how often WATCHDOG=1 must be sent: half of
// WATCHDOG_USEC, as systemd recommends. It returns false when the watchdog
// is off or meant for another process (WATCHDOG_PID).
func WatchdogInterval() (time.Duration, bool) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0, false
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		if pid, err := strconv.Atoi(p); err != nil || pid != os.Getpid() {
			return 0, false
		}
	}
	return time.Duration(usec) * time.Microsecond / 2, true
}
