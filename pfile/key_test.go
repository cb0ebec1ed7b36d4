package pfile

import "testing"

func TestBaseKey(t *testing.T) {
	p := &Process{Name: "/usr/sbin/httpd", Script: "/etc/r.sh", Args: "-k", User: "www"}
	q := *p
	q.Retry = 9 // retry settings do not change the key
	if p.BaseKey() != q.BaseKey() {
		t.Fatal("retry settings change the key")
	}
	r := *p
	r.ByName = true
	if p.BaseKey() == r.BaseKey() {
		t.Fatal("a quoted name and a path share a key")
	}
	s := *p
	s.Args = "-x"
	if p.BaseKey() == s.BaseKey() {
		t.Fatal("different args share a key")
	}
}

// TestSetKeys: two identical lines are two entries, told apart by order.
func TestSetKeys(t *testing.T) {
	a := &Process{Name: "/usr/sbin/httpd", Script: "/etc/r.sh"}
	b := *a
	c := &Process{Name: "/usr/sbin/sshd", Script: "/etc/s.sh"}
	f := &File{Processes: []*Process{a, &b, c}}
	SetKeys(f)
	want := []string{"/usr/sbin/httpd /etc/r.sh", "/usr/sbin/httpd /etc/r.sh #2", "/usr/sbin/sshd /etc/s.sh"}
	for i, p := range f.Processes {
		if p.Key != want[i] {
			t.Errorf("key %d = %q, want %q", i, p.Key, want[i])
		}
	}
	if !a.SameProcess(&b) || a.SameProcess(c) {
		t.Fatal("SameProcess")
	}
}
