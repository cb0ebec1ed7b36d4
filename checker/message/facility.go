package message

import (
	"errors"
	"fmt"
	"strings"
)

// Facility is a syslog facility code (RFC 5424 numbering).
type Facility int

// The facilities a pfile's SyslogFacility may name.
const (
	FacilityUser   Facility = 1
	FacilityDaemon Facility = 3
	FacilityLocal0 Facility = 16
	FacilityLocal1 Facility = 17
	FacilityLocal2 Facility = 18
	FacilityLocal3 Facility = 19
	FacilityLocal4 Facility = 20
	FacilityLocal5 Facility = 21
	FacilityLocal6 Facility = 22
	FacilityLocal7 Facility = 23
)

// DefaultFacility is the facility when none is configured.
const DefaultFacility = FacilityDaemon

// ErrFacility is returned (wrapped) for a facility name other than daemon,
// user and local0..local7.
var ErrFacility = errors.New("unknown syslog facility (want daemon, user or local0..local7)")

// String returns the facility's name: daemon, user, local0 ... local7.
func (f Facility) String() string {
	switch {
	case f == FacilityUser:
		return "user"
	case f == FacilityDaemon:
		return "daemon"
	case f >= FacilityLocal0 && f <= FacilityLocal7:
		return fmt.Sprintf("local%d", f-FacilityLocal0)
	}
	return fmt.Sprintf("Facility(%d)", int(f))
}

// ParseFacility reads a SyslogFacility value, case-insensitively. The empty
// string is DefaultFacility.
func ParseFacility(name string) (Facility, error) {
	switch n := strings.ToLower(name); n {
	case "":
		return DefaultFacility, nil
	case "user":
		return FacilityUser, nil
	case "daemon":
		return FacilityDaemon, nil
	default:
		if len(n) == len("local0") && strings.HasPrefix(n, "local") && n[5] >= '0' && n[5] <= '7' {
			return FacilityLocal0 + Facility(n[5]-'0'), nil
		}
	}
	return 0, fmt.Errorf("syslog facility %q: %w", name, ErrFacility)
}
