// Package jsonread reads a plain subset of JSON into Go values by hand,
// several times faster than encoding/json's reflection: keys as they are
// spelled, strings without escapes in valid UTF-8, numbers as JSON
// writes them, values skipped over and checked. Each read reports false
// where the input leaves that subset; its callers (the API's request
// bodies, the SDK's answers) then read the whole input with encoding/json
// instead, so that they accept, refuse and say what they did before, and
// fuzz tests hold the two readings to the same result.
package jsonread
