package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a signed webhook delivery (see SignWebhook).
const (
	HeaderTaskID    = "Hourglass-Task-Id"
	HeaderTimestamp = "Hourglass-Timestamp"
	HeaderSignature = "Hourglass-Signature"
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

// SignWebhook is the signature of a delivery: "v1," and the base64
// HMAC-SHA256, under key, of "id.timestamp.body" (timestamp in Unix
// seconds), in the spirit of the Standard Webhooks scheme.
func SignWebhook(key []byte, id string, timestamp int64, body []byte) string {
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

// VerifyWebhook checks a delivery's signature headers against body: one of
// the signatures (the server signs with each of its keys while they are
// rotated) must be made with one of keys, and the timestamp must be within
// tolerance of now (5 minutes if zero), so a captured delivery cannot be
// replayed later.
func VerifyWebhook(keys [][]byte, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not a Unix time", ErrBadSignature, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: the timestamp is %v away from now, over %v", ErrBadSignature, d.Round(time.Second), tolerance)
	}
	id := h.Get(HeaderTaskID)
	for _, key := range keys {
		want := SignWebhook(key, id, ts, body)
		for _, got := range strings.Fields(h.Get(HeaderSignature)) {
			if hmac.Equal([]byte(got), []byte(want)) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no signature matches a key", ErrBadSignature)
}
