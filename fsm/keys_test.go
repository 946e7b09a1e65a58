package fsm

import (
	"testing"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// TestHostOfOneSpellingPerHost: every spelling of one host and port that
// the delivery client connects to the same place with is one host for the
// gates (issue 17: ports with leading zeros walked around the host cap).
func TestHostOfOneSpellingPerHost(t *testing.T) {
	same := map[string][]string{
		"127.0.0.1:18003": {
			"http://127.0.0.1:18003/hook",
			"http://127.0.0.1:018003/hook",
			"http://127.0.0.1:0018003?x=1",
			"http://user:pw@127.0.0.1:18003#f",
			"HTTP://[::ffff:127.0.0.1]:18003/",
		},
		"example.com:443": {
			"https://example.com/",
			"https://EXAMPLE.com.:443/a",
			"https://a@Example.Com:0443",
		},
		"example.com:80": {"http://example.com", "http://example.com:80/"},
		"[::1]:8080":     {"http://[::1]:8080/", "http://[0:0:0:0:0:0:0:1]:08080/"},
	}
	for want, urls := range same {
		for _, u := range urls {
			if got := hostOf(u); got != want {
				t.Errorf("hostOf(%q) = %q, want %q", u, got, want)
			}
		}
	}
	// Names are not resolved, and other ports are other hosts.
	for _, pair := range [][2]string{
		{"http://localhost:80/", "http://127.0.0.1:80/"},
		{"http://example.com:8080/", "http://example.com:8081/"},
		{"http://example.com/", "https://example.com/"},
	} {
		if hostOf(pair[0]) == hostOf(pair[1]) {
			t.Errorf("%q and %q are one host", pair[0], pair[1])
		}
	}
}

func BenchmarkHostOf(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		hostOf("http://127.0.0.1:18003/hook?x=1")
	}
}

// TestDescribeEveryState: every state a task can be in has words of its
// own in errors (EXPIRED once fell through to "an unknown state").
func TestDescribeEveryState(t *testing.T) {
	for n := range fsmpb.State_name {
		if s := fsmpb.State(n); s != fsmpb.State_STATE_UNSPECIFIED && describe(s) == describe(fsmpb.State_STATE_UNSPECIFIED) {
			t.Errorf("state %v has no description", s)
		}
	}
}
