package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestIsJournalStream(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if !isJournalStream(f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)) {
		t.Error("stderr connected to the journal not recognised")
	}
	for _, stream := range []string{"", "1:2", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)} {
		if isJournalStream(f, stream) {
			t.Errorf("JOURNAL_STREAM=%q taken for this file", stream)
		}
	}
}
