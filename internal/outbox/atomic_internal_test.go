package outbox

import "testing"

// TestServerAtLeast: the version check that keeps atomic batches from
// servers older than 2.12, and from a version the client cannot read.
func TestServerAtLeast(t *testing.T) {
	for _, c := range []struct {
		version string
		want    bool
	}{
		{"2.12.0", true},
		{"2.15.3", true},
		{"2.12.0-beta.1", true},
		{"2.13-RC.2", true},
		{"3.0.0", true},
		{"2.11.9", false},
		{"2.9.10", false},
		{"1.20.0", false},
		{"", false},
		{"2", false},
		{"x.y.z", false},
	} {
		if got := serverAtLeast(c.version, 2, 12); got != c.want {
			t.Errorf("serverAtLeast(%q, 2, 12) = %v, want %v", c.version, got, c.want)
		}
	}
}
