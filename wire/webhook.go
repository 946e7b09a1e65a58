package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook delivery; the v2 signature (SignWebhook) covers
// every one of them and the body.
const (
	HeaderTaskID       = "Hourglass-Task-Id"
	HeaderAttempt      = "Hourglass-Attempt"
	HeaderFencingToken = "Hourglass-Fencing-Token"
	HeaderScheduledAt  = "Hourglass-Scheduled-At"
	HeaderTimestamp    = "Hourglass-Timestamp"
	HeaderSignature    = "Hourglass-Signature"
)

// SigningKeyPrefix starts a signing key's text form: whsec_ and the key's
// bytes in standard base64.
const SigningKeyPrefix = "whsec_"

// ParseSigningKey reads a signing key's text form ("whsec_" + base64).
func ParseSigningKey(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), SigningKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("signing key: want %s followed by base64", SigningKeyPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("signing key: want at least 16 bytes in base64 after %s", SigningKeyPrefix)
	}
	return key, nil
}

// SignedDelivery is what a delivery's v2 signature covers: the values of
// its Hourglass-* headers, exactly as sent, and its body.
type SignedDelivery struct {
	TaskID       string
	Attempt      string
	FencingToken string
	ScheduledAt  string
	Timestamp    string // Unix seconds
	Body         []byte
}

// signedDelivery reads what a v2 signature covers from a delivery.
func signedDelivery(h http.Header, body []byte) SignedDelivery {
	return SignedDelivery{TaskID: h.Get(HeaderTaskID), Attempt: h.Get(HeaderAttempt), FencingToken: h.Get(HeaderFencingToken),
		ScheduledAt: h.Get(HeaderScheduledAt), Timestamp: h.Get(HeaderTimestamp), Body: body}
}

// SignWebhook is a delivery's v2 signature: "v2," and the base64
// HMAC-SHA256, under key, of a domain tag and every field of d, each
// preceded by its length as 8 bytes big-endian, so that no two different
// deliveries frame to the same bytes (an id may contain any separator).
func SignWebhook(key []byte, d SignedDelivery) string {
	mac := hmac.New(sha256.New, key)
	var n [8]byte
	for _, field := range [][]byte{[]byte("hourglass-webhook-v2"), []byte(d.TaskID), []byte(d.Attempt), []byte(d.FencingToken),
		[]byte(d.ScheduledAt), []byte(d.Timestamp), d.Body} {
		binary.BigEndian.PutUint64(n[:], uint64(len(field)))
		mac.Write(n[:])
		mac.Write(field)
	}
	return "v2," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignWebhookV1 is the signature servers before v2 sent (and still send
// beside v2, for a release): "v1," and the base64 HMAC-SHA256 of
// "id.timestamp.body". It covers neither the attempt nor the fencing
// token, and its framing is ambiguous where an id holds a dot. Servers
// stop sending it in the release after the one that added v2; receivers
// verify v2 with VerifyWebhook.
func SignWebhookV1(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ErrBadSignature is returned by VerifyWebhook for a delivery that is not
// signed by any of the keys, or is too old or too new.
var ErrBadSignature = errors.New("webhook signature does not verify")

// VerifyWebhook checks a delivery's v2 signature against its headers and
// body: one of the signatures (the server signs with each of its keys while
// they are rotated) must be made with one of keys over the task id,
// attempt, fencing token, scheduled time, timestamp and body, and the
// timestamp must be within tolerance of now (5 minutes if zero), so a
// captured delivery cannot be replayed later, nor with another attempt or
// fencing token. v1 signatures are not accepted here (VerifyWebhookV1).
func VerifyWebhook(keys [][]byte, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	ts, err := checkTimestamp(h, tolerance, now)
	if err != nil {
		return err
	}
	d := signedDelivery(h, body)
	d.Timestamp = strconv.FormatInt(ts, 10)
	if d.Timestamp != h.Get(HeaderTimestamp) {
		return fmt.Errorf("%w: %s is not a plain Unix time", ErrBadSignature, HeaderTimestamp)
	}
	return matchSignature(keys, h, func(key []byte) string { return SignWebhook(key, d) })
}

// VerifyWebhookV1 checks a v1 signature, for receivers of servers from
// before v2 signatures: it trusts only the task id, timestamp and body.
//
// Deprecated: use VerifyWebhook; servers send both signatures for a
// release.
func VerifyWebhookV1(keys [][]byte, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	ts, err := checkTimestamp(h, tolerance, now)
	if err != nil {
		return err
	}
	id := h.Get(HeaderTaskID)
	return matchSignature(keys, h, func(key []byte) string { return SignWebhookV1(key, id, ts, body) })
}

func checkTimestamp(h http.Header, tolerance time.Duration, now time.Time) (int64, error) {
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s is not a Unix time", ErrBadSignature, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return 0, fmt.Errorf("%w: the timestamp is %v away from now, over %v", ErrBadSignature, d.Round(time.Second), tolerance)
	}
	return ts, nil
}

func matchSignature(keys [][]byte, h http.Header, sign func(key []byte) string) error {
	for _, key := range keys {
		want := sign(key)
		for _, got := range strings.Fields(h.Get(HeaderSignature)) {
			if hmac.Equal([]byte(got), []byte(want)) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no signature matches a key", ErrBadSignature)
}
