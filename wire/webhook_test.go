package wire

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signedHeader is a delivery's headers as the server sends them, signed
// with keys (v2, then v1).
func signedHeader(d SignedDelivery, keys ...[]byte) http.Header {
	h := http.Header{}
	h.Set(HeaderTaskID, d.TaskID)
	h.Set(HeaderAttempt, d.Attempt)
	h.Set(HeaderFencingToken, d.FencingToken)
	h.Set(HeaderScheduledAt, d.ScheduledAt)
	h.Set(HeaderTimestamp, d.Timestamp)
	var sigs []string
	for _, k := range keys {
		sigs = append(sigs, SignWebhook(k, d))
	}
	ts, _ := strconv.ParseInt(d.Timestamp, 10, 64)
	for _, k := range keys {
		sigs = append(sigs, SignWebhookV1(k, d.TaskID, ts, d.Body))
	}
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return h
}

func TestVerifyWebhook(t *testing.T) {
	old, current, other := []byte("old-key-0123456789"), []byte("new-key-0123456789"), []byte("not-our-key-012345")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"order":42}`)
	delivery := func(id string, at time.Time, body []byte) SignedDelivery {
		return SignedDelivery{TaskID: id, Attempt: "1", FencingToken: "3.1042", ScheduledAt: "2027-01-15T08:00:00Z",
			Timestamp: strconv.FormatInt(at.Unix(), 10), Body: body}
	}
	// Rotation: signed with both keys, verified by a receiver with either.
	h := signedHeader(delivery("t1", now, body), old, current)
	for _, keys := range [][][]byte{{old}, {current}, {other, current}} {
		if err := VerifyWebhook(keys, h, body, 0, now); err != nil {
			t.Errorf("keys %q: %v", keys, err)
		}
	}
	with := func(k, v string) http.Header { c := h.Clone(); c.Set(k, v); return c }
	without := func(k string) http.Header { c := h.Clone(); c.Del(k); return c }
	onlyV1 := func() http.Header {
		c := h.Clone()
		var v1 []string
		for _, s := range strings.Fields(h.Get(HeaderSignature)) {
			if strings.HasPrefix(s, "v1,") {
				v1 = append(v1, s)
			}
		}
		c.Set(HeaderSignature, strings.Join(v1, " "))
		return c
	}()
	for name, c := range map[string]struct {
		h    http.Header
		body []byte
		keys [][]byte
	}{
		"other key":                 {h, body, [][]byte{other}},
		"changed body":              {h, []byte(`{"order":43}`), [][]byte{current}},
		"changed id":                {with(HeaderTaskID, "t2"), body, [][]byte{current}},
		"replayed as attempt 7":     {with(HeaderAttempt, "7"), body, [][]byte{current}},
		"made-up fencing token":     {with(HeaderFencingToken, "99.1"), body, [][]byte{current}},
		"another scheduled time":    {with(HeaderScheduledAt, "2027-01-16T08:00:00Z"), body, [][]byte{current}},
		"timestamp with a + sign":   {with(HeaderTimestamp, "+"+h.Get(HeaderTimestamp)), body, [][]byte{current}},
		"v2 stripped, only v1 left": {onlyV1, body, [][]byte{current}},
		"replayed later":            {signedHeader(delivery("t1", now.Add(-10*time.Minute), body), current), body, [][]byte{current}},
		"from the future":           {signedHeader(delivery("t1", now.Add(10*time.Minute), body), current), body, [][]byte{current}},
		"no timestamp":              {without(HeaderTimestamp), body, [][]byte{current}},
		"no signature":              {without(HeaderSignature), body, [][]byte{current}},
	} {
		if err := VerifyWebhook(c.keys, c.h, c.body, 0, now); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	// The v1 form is still checked by VerifyWebhookV1, and shows why v2
	// exists: it does not cover the attempt.
	if err := VerifyWebhookV1([][]byte{current}, with(HeaderAttempt, "7"), body, 0, now); err != nil {
		t.Errorf("v1 of a delivery: %v", err)
	}
	if _, err := ParseSigningKey("whsec_" + "c2hvcnQ="); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	if k, err := ParseSigningKey("whsec_MDEyMzQ1Njc4OWFiY2RlZg=="); err != nil || string(k) != "0123456789abcdef" {
		t.Errorf("ParseSigningKey: %q %v", k, err)
	}
}

// TestSignatureFramingIsUnambiguous: v1 signed "id.timestamp.body", so id
// "amb" with body "1796040429.5" and id "amb.1796036829" with body "5"
// (at another timestamp) signed the same bytes; v2 frames every field.
func TestSignatureFramingIsUnambiguous(t *testing.T) {
	key := []byte("key-0123456789abcdef")
	if SignWebhookV1(key, "amb", 1796036829, []byte("1796040429.5")) != SignWebhookV1(key, "amb.1796036829", 1796040429, []byte("5")) {
		t.Fatal("the v1 example is not ambiguous: the test no longer shows what it should")
	}
	a := SignedDelivery{TaskID: "amb", Timestamp: "1796036829", Body: []byte("1796040429.5")}
	b := SignedDelivery{TaskID: "amb.1796036829", Timestamp: "1796040429", Body: []byte("5")}
	if SignWebhook(key, a) == SignWebhook(key, b) {
		t.Fatal("v2 signs two different deliveries alike")
	}
	// Moving bytes between adjacent fields changes the signature.
	c := SignedDelivery{TaskID: "x", Attempt: "12", FencingToken: "3.4"}
	d := SignedDelivery{TaskID: "x", Attempt: "1", FencingToken: "23.4"}
	if SignWebhook(key, c) == SignWebhook(key, d) {
		t.Fatal("v2 signs shifted fields alike")
	}
}

// FuzzVerifyWebhook feeds arbitrary headers and bodies, as a receiver gets
// them from the network, to VerifyWebhook: it never panics, and accepts a
// delivery only when it carries the v2 signature SignWebhook makes with the
// key over those headers, within the tolerance.
func FuzzVerifyWebhook(f *testing.F) {
	key := []byte("fuzz-key-0123456789")
	now := time.Unix(1_800_000_000, 0)
	good := SignedDelivery{TaskID: "task-1", Attempt: "1", FencingToken: "2.7", ScheduledAt: "2027-01-01T00:00:00Z", Timestamp: "1800000000", Body: []byte("{}")}
	f.Add(good.TaskID, good.Attempt, good.FencingToken, good.Timestamp, SignWebhook(key, good), good.Body)
	f.Add("task-1", "1", "2.7", "1800000000", SignWebhookV1(key, "task-1", 1_800_000_000, []byte("{}")), []byte("{}"))
	f.Add("", "", "", "-9223372036854775808", "v1, v1,x", []byte(""))
	f.Add("a", "0", "", "9223372036854775807", "v2,AAAA v1,", []byte("\x00"))
	f.Fuzz(func(t *testing.T, id, attempt, fencing, timestamp, signature string, body []byte) {
		h := http.Header{}
		h.Set(HeaderTaskID, id)
		h.Set(HeaderAttempt, attempt)
		h.Set(HeaderFencingToken, fencing)
		h.Set(HeaderScheduledAt, good.ScheduledAt)
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
		want := SignWebhook(key, signedDelivery(h, body))
		if !slices.Contains(strings.Fields(h.Get(HeaderSignature)), want) {
			t.Fatalf("accepted signature %q for %q", signature, want)
		}
	})
}
