// Package state keeps what pcheck must remember across its own restarts:
// the restart attempts of every process entry of a pfile, so that a
// crash-looping pcheck cannot reset its retry counts.
//
// A Store is one JSON file per pfile in the state directory. Every change
// is written atomically (temporary file, fsync, rename, fsync of the
// directory, through trust.WriteFileAtomic): after a crash the file holds
// either the old or the new state, never a mix.
package state

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pcheck/pcheck/checker/trust"
)

// version is the format of the state file; a file of another version is
// ignored rather than misread.
const version = 1

// Name returns the stem that names a pfile's files in the state and run
// directories: the absolute path with separators and unusual characters
// replaced, and a short hash of the path so two paths never collide.
// For /etc/pcheck/web.pf it is "etc_pcheck_web.pf-1a2b3c4d".
func Name(pfilePath string) string {
	abs, err := filepath.Abs(pfilePath)
	if err != nil {
		abs = filepath.Clean(pfilePath)
	}
	sum := sha256.Sum256([]byte(abs))
	var b strings.Builder
	for _, r := range strings.TrimPrefix(abs, "/") {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	stem := b.String()
	if len(stem) > 80 {
		stem = stem[len(stem)-80:]
	}
	return stem + "-" + hex.EncodeToString(sum[:4])
}

// ErrCorrupt is returned by Open when the state file cannot be decoded.
var ErrCorrupt = errors.New("state file is corrupt")

// Store is the persisted state of one pfile. Its methods are safe for
// concurrent use.
type Store struct {
	path  string
	spare string // where a save goes when path cannot be written; "" none

	mu      sync.Mutex
	data    fileData
	dropped []Dropped // set by Open only
}

// fileData is the JSON form of the state file.
type fileData struct {
	Version int    `json:"version"`
	Pfile   string `json:"pfile"`
	// Saved is when the file was written: of a state file and its spare,
	// the later one is the state.
	Saved   time.Time             `json:"saved,omitzero"`
	Entries map[string]*entryData `json:"entries"`
}

type entryData struct {
	// Attempts are the wall-clock times of the restart attempts, oldest
	// first.
	Attempts []time.Time `json:"attempts"`
}

// ClockSkew is how far in the future a restart attempt read from disk may
// lie and still count: a clock stepped back by NTP by less than this is
// not worth losing a count over. An attempt further ahead (the clock was
// ahead when it was written, or the file is damaged) cannot have happened
// yet and would only use up retries that were never tried.
const ClockSkew = time.Second

// Dropped is a restart attempt that Open left out because it lies in the
// future.
type Dropped struct {
	// Key is the entry's key.
	Key string
	// Attempt is the recorded time, Now the clock when it was read.
	Attempt, Now time.Time
}

func (d Dropped) String() string {
	return fmt.Sprintf("entry '%s': restart attempt at %s is in the future (now %s), not counted",
		d.Key, d.Attempt.Format(time.RFC3339Nano), d.Now.Format(time.RFC3339Nano))
}

// Open reads the state file at path; a missing file is an empty state.
// A corrupt file, or a symbolic link (never followed), is reported with an
// error and an empty Store is still returned, so the caller may log and go
// on. Attempts more than ClockSkew in the future are left out and listed
// by Dropped.
func Open(path, pfilePath string) (*Store, error) { return OpenWithSpare(path, "", pfilePath) }

// OpenWithSpare is Open for a Store that saves to spare (a file in the run
// directory, on tmpfs) while path cannot be written (its file system full
// or read-only): the counts then survive a restart of pcheck, not only of
// its Store. Of the two files the later written is read; a spare is
// removed once path is written again.
func OpenWithSpare(path, spare, pfilePath string) (*Store, error) {
	if spare != "" && filepath.Clean(spare) == filepath.Clean(path) {
		spare = ""
	}
	s := &Store{path: path, spare: spare, data: fileData{Version: version, Pfile: pfilePath, Entries: map[string]*entryData{}}}
	d, err := read(path)
	if spare != "" {
		if sd, serr := read(spare); serr == nil && sd != nil && (d == nil || sd.Saved.After(d.Saved)) {
			d, err = sd, nil
		}
	}
	if err != nil || d == nil {
		return s, err
	}
	now := time.Now()
	for k, e := range d.Entries {
		if e == nil {
			continue
		}
		kept := e.Attempts[:0]
		for _, t := range e.Attempts {
			if t.After(now.Add(ClockSkew)) {
				s.dropped = append(s.dropped, Dropped{Key: k, Attempt: t, Now: now})
				continue
			}
			kept = append(kept, t)
		}
		if len(kept) > 0 {
			s.data.Entries[k] = &entryData{Attempts: kept}
		}
	}
	slices.SortFunc(s.dropped, func(a, b Dropped) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), a.Attempt.Compare(b.Attempt))
	})
	return s, nil
}

// read decodes the state file at path; nil and no error when there is
// none.
func read(path string) (*fileData, error) {
	b, err := trust.ReadFileNoFollow(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("state file %s is a symbolic link: not read, and replaced at the next save", path)
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	var d fileData
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("state file %s: %w: %v", path, ErrCorrupt, err)
	}
	if d.Version != version {
		return nil, fmt.Errorf("state file %s: %w: version %d, want %d", path, ErrCorrupt, d.Version, version)
	}
	return &d, nil
}

// Dropped returns the attempts Open left out, by key and time.
func (s *Store) Dropped() []Dropped { return slices.Clone(s.dropped) }

// Path returns the file the Store writes.
func (s *Store) Path() string { return s.path }

// Attempts returns a copy of the restart attempts recorded for key.
func (s *Store) Attempts(key string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.data.Entries[key]; e != nil {
		return slices.Clone(e.Attempts)
	}
	return nil
}

// SetAttempts records the restart attempts of key and writes the file.
// An empty list removes the key.
func (s *Store) SetAttempts(key string, attempts []time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(attempts) == 0 {
		delete(s.data.Entries, key)
	} else {
		s.data.Entries[key] = &entryData{Attempts: slices.Clone(attempts)}
	}
	return s.save()
}

// Keep removes every key not in keys (entries removed from the pfile) and
// writes the file when something was removed.
func (s *Store) Keep(keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := false
	for k := range s.data.Entries {
		if !slices.Contains(keys, k) {
			delete(s.data.Entries, k)
			removed = true
		}
	}
	if !removed {
		return nil
	}
	return s.save()
}

func (s *Store) save() error {
	s.data.Saved = time.Now()
	b, err := json.MarshalIndent(&s.data, "", "  ")
	if err != nil {
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	b = append(b, '\n')
	err = trust.WriteFileAtomic(s.path, b, 0o600)
	if s.spare == "" {
		return err
	}
	if err == nil {
		if rerr := os.Remove(s.spare); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("state file %s: its spare %s: %w", s.path, s.spare, rerr)
		}
		return nil
	}
	if serr := trust.WriteFileAtomic(s.spare, b, 0o600); serr != nil {
		return fmt.Errorf("%w; nor in its spare: %w", err, serr)
	}
	return fmt.Errorf("%w; kept in %s until it can be written", err, s.spare)
}
