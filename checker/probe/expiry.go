package probe

import "time"

// day is the unit of TLSExpiryWarn and TLSExpiryFail.
const day = 24 * time.Hour

// DaysLeft is how many whole days are left at now before notAfter, a
// certificate's end of validity: 2 for 2 days and 23 hours, 0 in its last
// day, negative once it has expired (-1 in the first day after).
func DaysLeft(notAfter, now time.Time) int {
	d := notAfter.Sub(now)
	n := int(d / day)
	if d < 0 && d%day != 0 {
		n--
	}
	return n
}

// ExpiryWarning decides whether a monitor with TLSExpiryWarn warnDays
// logs message.TLSExpiresSoon now for a certificate that ends at notAfter:
// when fewer than warnDays whole days are left (DaysLeft(notAfter, now) <
// warnDays) and the monitor has not warned in the last 24 hours. last is
// when it last warned, zero if never; a now before last (the clock set
// back) warns again rather than stay silent until the clock catches up.
// days is what the warning says. It is pure: the caller keeps last.
func ExpiryWarning(notAfter time.Time, warnDays int, last, now time.Time) (days int, warn bool) {
	if notAfter.IsZero() || warnDays <= 0 {
		return 0, false
	}
	days = DaysLeft(notAfter, now)
	if days >= warnDays {
		return days, false
	}
	if !last.IsZero() {
		if since := now.Sub(last); since >= 0 && since < day {
			return days, false
		}
	}
	return days, true
}
