package client

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVerifyWebhook(t *testing.T) {
	old, current, other := []byte("old-key-0123456789"), []byte("new-key-0123456789"), []byte("not-our-key-012345")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"order":42}`)
	signed := func(id string, ts int64, body []byte, keys ...[]byte) http.Header {
		h := http.Header{}
		h.Set(HeaderTaskID, id)
		h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		sigs := ""
		for i, k := range keys {
			if i > 0 {
				sigs += " "
			}
			sigs += SignWebhook(k, id, ts, body)
		}
		h.Set(HeaderSignature, sigs)
		return h
	}
	// Rotation: signed with both keys, verified by a receiver with either.
	h := signed("t1", now.Unix(), body, old, current)
	for _, keys := range [][][]byte{{old}, {current}, {other, current}} {
		if err := VerifyWebhook(keys, h, body, 0, now); err != nil {
			t.Errorf("keys %q: %v", keys, err)
		}
	}
	for name, c := range map[string]struct {
		h    http.Header
		body []byte
		keys [][]byte
	}{
		"other key":       {h, body, [][]byte{other}},
		"changed body":    {h, []byte(`{"order":43}`), [][]byte{current}},
		"changed id":      {func() http.Header { c := h.Clone(); c.Set(HeaderTaskID, "t2"); return c }(), body, [][]byte{current}},
		"replayed later":  {signed("t1", now.Add(-10*time.Minute).Unix(), body, current), body, [][]byte{current}},
		"from the future": {signed("t1", now.Add(10*time.Minute).Unix(), body, current), body, [][]byte{current}},
		"no timestamp":    {func() http.Header { c := h.Clone(); c.Del(HeaderTimestamp); return c }(), body, [][]byte{current}},
		"no signature":    {func() http.Header { c := h.Clone(); c.Del(HeaderSignature); return c }(), body, [][]byte{current}},
	} {
		if err := VerifyWebhook(c.keys, c.h, c.body, 0, now); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	if _, err := ParseSigningKey("whsec_" + "c2hvcnQ="); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	if k, err := ParseSigningKey("whsec_MDEyMzQ1Njc4OWFiY2RlZg=="); err != nil || string(k) != "0123456789abcdef" {
		t.Errorf("ParseSigningKey: %q %v", k, err)
	}
}

// FuzzVerifyWebhook feeds arbitrary headers and bodies, as a receiver gets
// them from the network, to VerifyWebhook: it never panics, and accepts a
// delivery only when it carries the signature SignWebhook makes with the
// key, within the tolerance.
func FuzzVerifyWebhook(f *testing.F) {
	key := []byte("fuzz-key-0123456789")
	now := time.Unix(1_800_000_000, 0)
	f.Add("task-1", "1800000000", SignWebhook(key, "task-1", 1_800_000_000, []byte("{}")), []byte("{}"))
	f.Add("", "-9223372036854775808", "v1, v1,x", []byte(""))
	f.Add("a", "9223372036854775807", "v2,AAAA v1,", []byte("\x00"))
	f.Fuzz(func(t *testing.T, id, timestamp, signature string, body []byte) {
		h := http.Header{}
		h.Set(HeaderTaskID, id)
		h.Set(HeaderTimestamp, timestamp)
		h.Set(HeaderSignature, signature)
		err := VerifyWebhook([][]byte{key}, h, body, time.Minute, now)
		if err != nil {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("an error that is not ErrBadSignature: %v", err)
			}
			return
		}
		ts, perr := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
		if perr != nil || ts < now.Add(-time.Minute).Unix() || ts > now.Add(time.Minute).Unix() {
			t.Fatalf("accepted timestamp %q", timestamp)
		}
		want := SignWebhook(key, h.Get(HeaderTaskID), ts, body)
		if !slices.Contains(strings.Fields(h.Get(HeaderSignature)), want) {
			t.Fatalf("accepted signature %q for %q", signature, want)
		}
	})
}
