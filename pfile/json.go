package pfile

import (
	"encoding/json"
	"time"
)

// The JSON form of the model gives every duration in whole seconds, as a
// pfile writes it. Each MarshalJSON embeds the struct and shadows its
// duration fields with seconds under the same names.

func s(d time.Duration) int64 { return int64(d / time.Second) }

// MarshalJSON implements json.Marshaler with durations in seconds.
func (p Params) MarshalJSON() ([]byte, error) {
	type plain Params
	return json.Marshal(struct {
		plain
		MonitorInterval  int64 `json:"monitor_interval"`
		MsgCheckInterval int64 `json:"msg_check_interval"`
		Grace            int64 `json:"grace"`
		RestartTimeout   int64 `json:"restart_timeout"`
		StartWait        int64 `json:"start_wait"`
		KillWait         int64 `json:"kill_wait"`
		RebootWindow     int64 `json:"reboot_window"`
	}{plain(p), s(p.MonitorInterval), s(p.MsgCheckInterval), s(p.Grace), s(p.RestartTimeout),
		s(p.StartWait), s(p.KillWait), s(p.RebootWindow)})
}

// MarshalJSON implements json.Marshaler with the age in minutes.
func (c Cleanup) MarshalJSON() ([]byte, error) {
	type plain Cleanup
	return json.Marshal(struct {
		plain
		Age     int64 `json:"age,omitempty"`
		Minutes int64 `json:"minutes"`
	}{plain: plain(c), Minutes: int64(c.Age / time.Minute)})
}

// MarshalJSON implements json.Marshaler with durations in seconds.
func (p Process) MarshalJSON() ([]byte, error) {
	type plain Process
	return json.Marshal(struct {
		plain
		Grace   int64 `json:"grace"`
		Timeout int64 `json:"timeout"`
	}{plain(p), s(p.Grace), s(p.Timeout)})
}

// MarshalJSON implements json.Marshaler with durations in seconds; a
// default timeout or interval is null.
func (e Entry) MarshalJSON() ([]byte, error) {
	type plain Entry
	opt := func(d time.Duration) *int64 {
		if d == 0 {
			return nil
		}
		v := s(d)
		return &v
	}
	var errField *int
	if e.Error >= 0 {
		errField = &e.Error
	}
	return json.Marshal(struct {
		plain
		Timeout  *int64 `json:"timeout"`
		Interval *int64 `json:"interval"`
		Error    *int   `json:"error"`
	}{plain(e), opt(e.Timeout), opt(e.Interval), errField})
}

// MarshalJSON implements json.Marshaler with durations in seconds.
func (m Monitor) MarshalJSON() ([]byte, error) {
	type plain Monitor
	return json.Marshal(struct {
		plain
		Interval int64 `json:"interval"`
		Failover int64 `json:"failover"`
		Timeout  int64 `json:"timeout"`
	}{plain(m), s(m.Interval), s(m.Failover), s(m.Timeout)})
}
