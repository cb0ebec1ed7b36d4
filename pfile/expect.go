package pfile

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// The HTTP block options read by httpOptions, lower-cased.
const (
	optExpectStatus  = "expectstatus"
	optExpectHeader  = "expectheader"
	optExpectBody    = "expectbody"
	optTLSExpiryWarn = "tlsexpirywarn"
	optTLSExpiryFail = "tlsexpiryfail"
)

// maxExpiryDays bounds TLSExpiryWarn and TLSExpiryFail (ten years).
const maxExpiryDays = 3650

// blockOpt is one block option line: its key as written and its value.
type blockOpt struct {
	key   Word
	value Word
}

// httpOptions reads the ExpectStatus, ExpectHeader, ExpectBody,
// TLSExpiryWarn and TLSExpiryFail lines of a block into its monitor. Each
// may appear once but ExpectHeader, whose lines must all match. It reports
// whether all were good.
func (b *Builder) httpOptions(blk *Block, opts []blockOpt) bool {
	m := &blk.Monitor
	ok := true
	seen := map[string]Pos{}
	for _, o := range opts {
		key := strings.ToLower(o.key.Text)
		if prev, dup := seen[key]; dup && key != optExpectHeader {
			b.errorf(o.key.Pos, "%s appears twice in %s (first at line %d)", o.key.Text, blk.Name, prev.Line)
			ok = false
			continue
		}
		seen[key] = o.key.Pos
		switch key {
		case optTLSExpiryWarn, optTLSExpiryFail:
			if m.Kind != KindWebservs {
				b.errorf(o.key.Pos, "%s applies to _bi_webservs only", o.key.Text)
				ok = false
				continue
			}
		default:
			if m.Kind != KindWebserv && m.Kind != KindWebservs {
				b.errorf(o.key.Pos, "%s applies to _bi_webserv and _bi_webservs only", o.key.Text)
				ok = false
				continue
			}
		}
		good := true
		switch key {
		case optExpectStatus:
			m.ExpectStatus, good = b.statusRanges(o.value)
		case optExpectHeader:
			var h HeaderExpect
			if h, good = b.headerExpect(o.value); good {
				m.ExpectHeaders = append(m.ExpectHeaders, h)
			}
		case optExpectBody:
			if o.value.Text == "" {
				b.errorf(o.value.Pos, "ExpectBody needs a regular expression")
				good = false
			} else if good = b.regexp(o.value, o.value.Text, "ExpectBody"); good {
				m.ExpectBody = o.value.Text
			}
		case optTLSExpiryWarn:
			m.TLSExpiryWarnDays, good = b.integer(o.value, o.key.Text+" days", 1, maxExpiryDays)
		case optTLSExpiryFail:
			m.TLSExpiryFailDays, good = b.integer(o.value, o.key.Text+" days", 1, maxExpiryDays)
		}
		ok = ok && good
	}
	if ok && m.TLSExpiryWarnDays > 0 && m.TLSExpiryWarnDays <= m.TLSExpiryFailDays {
		b.warnf(seen[optTLSExpiryWarn], "TLSExpiryWarn %d is not above TLSExpiryFail %d: attempts fail before any warning", m.TLSExpiryWarnDays, m.TLSExpiryFailDays)
	}
	return ok
}

// statusRanges reads an ExpectStatus value: codes and ranges of codes
// 100-599, comma-separated ("200-399", "200,204,301-302").
func (b *Builder) statusRanges(v Word) ([]StatusRange, bool) {
	var out []StatusRange
	off := 0
	for _, part := range strings.Split(v.Text, ",") {
		at := v.Pos
		at.Col += off
		if v.Quoted {
			at.Col++
		}
		off += len(part) + 1
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		l, errL := strconv.Atoi(lo)
		h, errH := strconv.Atoi(hi)
		switch {
		case errL != nil || errH != nil || strings.ContainsAny(part, "+ "):
			b.errorf(at, "ExpectStatus: %q is not a status code or a range of codes such as 200-399", part)
			return nil, false
		case l < 100 || l > 599 || h < 100 || h > 599:
			b.errorf(at, "ExpectStatus: %q is outside the status codes 100-599", part)
			return nil, false
		case l > h:
			b.errorf(at, "ExpectStatus: range %q ends before it starts", part)
			return nil, false
		}
		out = append(out, StatusRange{Lo: l, Hi: h})
	}
	return out, true
}

// headerExpect reads an ExpectHeader value, "Name: regex".
func (b *Builder) headerExpect(v Word) (HeaderExpect, bool) {
	name, pattern, found := strings.Cut(v.Text, ":")
	if !found || !isToken(name) {
		b.errorf(v.Pos, "ExpectHeader must be \"Name: regex\" (a header name, a colon, a regular expression), not %q", v.Text)
		return HeaderExpect{}, false
	}
	pattern = strings.TrimLeft(pattern, " \t")
	if !b.regexp(v, pattern, "ExpectHeader "+name) {
		return HeaderExpect{}, false
	}
	return HeaderExpect{Name: name, Pattern: pattern}, true
}

// regexp checks that pattern, read from v, is a regular expression.
func (b *Builder) regexp(v Word, pattern, what string) bool {
	if _, err := regexp.Compile(pattern); err != nil {
		msg := err.Error()
		var se *syntax.Error
		if errors.As(err, &se) {
			msg = fmt.Sprintf("%s in %q", se.Code, se.Expr)
		}
		b.errorf(v.Pos, "%s: bad regular expression %q: %s", what, pattern, msg)
		return false
	}
	return true
}

// isToken reports whether s is an HTTP header name (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// FormatStatusRanges writes ranges as ExpectStatus takes them:
// "200-399,404".
func FormatStatusRanges(ranges []StatusRange) string {
	var sb strings.Builder
	for i, r := range ranges {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(r.Lo))
		if r.Hi != r.Lo {
			sb.WriteByte('-')
			sb.WriteString(strconv.Itoa(r.Hi))
		}
	}
	return sb.String()
}
