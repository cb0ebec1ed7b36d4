package syslogtest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrMalformed is returned (wrapped) by Parse for a line in none of the
// known formats.
var ErrMalformed = errors.New("malformed syslog line")

// Line is one parsed syslog line.
type Line struct {
	// Facility and Severity come from the <PRI> prefix; both are -1 when
	// the line has none (a log file written without it).
	Facility, Severity int
	Timestamp          string // as written
	Host               string // "" when the line has none (go-syslog's local format)
	Ident              string
	Pid                int // 0 when the tag has no [pid]
	Text               string
	Raw                string // the datagram or file line, trailing newline removed
}

// String returns the raw line.
func (l Line) String() string { return l.Raw }

// Parse reads one line in any of the formats go-syslog sends or rsyslog
// writes:
//
//	<PRI>Mmm dd hh:mm:ss tag[pid]: text             go-syslog, local socket
//	<PRI>RFC3339 host tag[pid]: text                go-syslog, DialLogger
//	RFC3339 host tag[pid]: text                     rsyslog file (RSYSLOG_FileFormat)
//	Mmm dd hh:mm:ss host tag[pid]: text             rsyslog file (traditional)
//
// The <PRI> prefix, the host and the [pid] are each optional. Text is
// everything after the single space that follows "tag:".
func Parse(raw string) (Line, error) {
	raw = strings.TrimSuffix(raw, "\n")
	l := Line{Facility: -1, Severity: -1, Raw: raw}
	bad := func(why string) (Line, error) {
		return l, fmt.Errorf("%w: %s: %q", ErrMalformed, why, raw)
	}
	rest := raw
	if strings.HasPrefix(rest, "<") {
		end := strings.IndexByte(rest, '>')
		if end < 2 || end > 4 {
			return bad("bad <PRI>")
		}
		pri, err := strconv.Atoi(rest[1:end])
		if err != nil || pri < 0 || pri > 191 {
			return bad("bad <PRI>")
		}
		l.Facility, l.Severity = pri>>3, pri&7
		rest = rest[end+1:]
	}

	switch {
	case rest != "" && rest[0] >= '0' && rest[0] <= '9':
		ts, after, ok := strings.Cut(rest, " ")
		if !ok {
			return bad("no text after the timestamp")
		}
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			return bad("bad RFC 3339 timestamp")
		}
		l.Timestamp, rest = ts, after
	case len(rest) > len(time.Stamp) && rest[len(time.Stamp)] == ' ':
		ts := rest[:len(time.Stamp)]
		if _, err := time.Parse(time.Stamp, ts); err != nil {
			return bad("bad timestamp")
		}
		l.Timestamp, rest = ts, rest[len(time.Stamp)+1:]
	default:
		return bad("no timestamp")
	}

	tag, after, _ := strings.Cut(rest, " ")
	if !strings.HasSuffix(tag, ":") {
		// Not a tag, so a host name.
		l.Host = tag
		tag, after, _ = strings.Cut(after, " ")
		if !strings.HasSuffix(tag, ":") {
			return bad("no tag")
		}
	}
	tag = strings.TrimSuffix(tag, ":")
	if open := strings.IndexByte(tag, '['); open >= 0 {
		if !strings.HasSuffix(tag, "]") {
			return bad("bad [pid]")
		}
		pid, err := strconv.Atoi(tag[open+1 : len(tag)-1])
		if err != nil {
			return bad("bad [pid]")
		}
		l.Pid, tag = pid, tag[:open]
	}
	if tag == "" {
		return bad("empty tag")
	}
	l.Ident, l.Text = tag, after
	return l, nil
}
