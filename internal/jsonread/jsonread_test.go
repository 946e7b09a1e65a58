package jsonread

import (
	"encoding/json"
	"testing"
)

// TestRawMatchesValid: Raw takes a value (but null) exactly when it is
// valid JSON by encoding/json, up to MaxDepth, and returns all of it.
func TestRawMatchesValid(t *testing.T) {
	for _, in := range []string{
		`{"a":[1,-2.5e+3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"]}`, `[]`, `{}`, `"\ud800"`, `0`, `-0.0E-0`,
		`01`, `1.`, `.5`, `-`, `1e`, `"\x"`, `"\u12"`, "\"a\x01\"", `{"a" 1}`, `{"a":1,}`, `[1,]`, `tru`, `nul`,
	} {
		r := New([]byte(in))
		raw, ok := r.Raw()
		ok = ok && r.End()
		if want := json.Valid([]byte(in)); ok != want {
			t.Errorf("Raw(%s): %v, encoding/json finds it valid: %v", in, ok, want)
		}
		if ok && string(raw) != in {
			t.Errorf("Raw(%s) = %s", in, raw)
		}
	}
}

func TestNumbers(t *testing.T) {
	for _, c := range []struct {
		in  string
		i   int
		iok bool
		u   uint64
		uok bool
	}{
		{"0", 0, true, 0, true},
		{"-0", 0, true, 0, false},
		{"123456789012345678", 123456789012345678, true, 123456789012345678, true},
		{"1234567890123456789", 0, false, 1234567890123456789, true},
		{"-12", -12, true, 0, false},
		{"1.5", 0, false, 0, false},
		{"1e3", 0, false, 0, false},
	} {
		var i int
		var u uint64
		if ok := New([]byte(c.in)).Int(&i); ok != c.iok || ok && i != c.i {
			t.Errorf("Int(%s) = %d, %v; want %d, %v", c.in, i, ok, c.i, c.iok)
		}
		if ok := New([]byte(c.in)).Uint(&u); ok != c.uok || ok && u != c.u {
			t.Errorf("Uint(%s) = %d, %v; want %d, %v", c.in, u, ok, c.u, c.uok)
		}
	}
}
