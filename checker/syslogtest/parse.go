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
	// Datagram is the datagram exactly as received, trailing newline
	// included; "" for a line read from a file.
	Datagram string
}

// String returns the raw line.
func (l Line) String() string { return l.Raw }

// Parse reads one line in any of the formats go-syslog sends or rsyslog
// writes:
//
//	<PRI>Mmm dd hh:mm:ss tag[pid]: text             local socket (glibc's syslog(3), pcheck)
//	<PRI>RFC3339 host tag[pid]: text                network (go-syslog, RSYSLOG_ForwardFormat)
//	RFC3339 host tag[pid]: text                     rsyslog file (RSYSLOG_FileFormat)
//	Mmm dd hh:mm:ss host tag[pid]: text             rsyslog file (traditional)
//	<PRI>1 RFC3339 host tag pid msgid sd  text      rsyslog file (RSYSLOG_SyslogProtocol23Format)
//
// The <PRI> prefix, the host and the [pid] are each optional. Text is
// everything after the single space that follows "tag:". In the RFC 5424
// layout (version 1), written by rsyslog from a local message, the message
// keeps the space that followed the tag's colon: Text is what follows the
// structured data and that space, and a "-" pid is 0.
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

	if l.Facility >= 0 && strings.HasPrefix(rest, "1 ") {
		return parse5424(l, rest[2:], bad)
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

// parse5424 reads the fields after "<PRI>1 ": timestamp, host, app, procid,
// msgid and structured data ("-" only), then the message.
func parse5424(l Line, rest string, bad func(string) (Line, error)) (Line, error) {
	f := strings.SplitN(rest, " ", 7)
	if len(f) < 6 {
		return bad("short RFC 5424 header")
	}
	if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
		return bad("bad RFC 3339 timestamp")
	}
	if f[5] != "-" {
		return bad("structured data other than -")
	}
	l.Timestamp, l.Host, l.Ident = f[0], f[1], f[2]
	if f[3] != "-" {
		pid, err := strconv.Atoi(f[3])
		if err != nil {
			return bad("bad procid")
		}
		l.Pid = pid
	}
	if len(f) == 7 {
		l.Text = strings.TrimPrefix(f[6], " ")
	}
	return l, nil
}
