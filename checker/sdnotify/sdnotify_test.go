package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen opens a unixgram socket at name and returns a function that reads
// one datagram with a deadline.
func listen(t *testing.T, name string) func() string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 512)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading notification: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotifyPathAndAbstract(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify.sock"),
		fmt.Sprintf("@pcheck-sdnotify-test-%d", os.Getpid()),
	} {
		read := listen(t, name)
		t.Setenv("NOTIFY_SOCKET", name)
		n, err := New()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, s := range []string{Ready, Watchdog} {
			if err := n.Notify(s); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := read(); got != s {
				t.Fatalf("%s: received %q, want %q", name, got, s)
			}
		}
		n.Close()
	}
}

func TestNewWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if _, err := New(); !errors.Is(err, ErrNoSocket) {
		t.Fatalf("err = %v, want ErrNoSocket", err)
	}
	if _, err := Dial("relative.sock"); err == nil {
		t.Fatal("relative socket name accepted")
	}
}

func TestNotifyNoListener(t *testing.T) {
	n, err := Dial(filepath.Join(t.TempDir(), "gone.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Notify(Ready); err == nil {
		t.Fatal("Notify to a missing socket succeeded")
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", "")
	if d, ok := WatchdogInterval(); !ok || d != 1500*time.Millisecond {
		t.Fatalf("WatchdogInterval = %v, %v; want 1.5s, true", d, ok)
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	if _, ok := WatchdogInterval(); ok {
		t.Fatal("watchdog meant for another pid accepted")
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if _, ok := WatchdogInterval(); !ok {
		t.Fatal("watchdog for our pid refused")
	}
	t.Setenv("WATCHDOG_USEC", "")
	if _, ok := WatchdogInterval(); ok {
		t.Fatal("watchdog on without WATCHDOG_USEC")
	}
}
