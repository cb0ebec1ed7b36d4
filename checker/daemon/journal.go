package daemon

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// stderrIsJournal reports whether w is the standard error that systemd
// connected to the journal (JOURNAL_STREAM names its device and inode).
// There the copy of each message on stderr would reach syslog a second
// time, and log monitors would see every Down twice; pcheck then logs to
// syslog only.
func stderrIsJournal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isJournalStream(f, os.Getenv("JOURNAL_STREAM"))
}

func isJournalStream(f *os.File, stream string) bool {
	if stream == "" {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return stream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
