package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// memTransport serves requests with a handler in memory, without a
// network, so that a client can run in a synctest bubble, on its fake
// clock: time passes only while every goroutine in it waits on time.
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func memClient(f *fakeCreates, opts ...Option) *Client {
	mem := WithTransport(func(http.RoundTripper) http.RoundTripper { return memTransport{f} })
	return New("http://hourglass.test", "", append(opts, mem)...)
}

// callInLoops runs a goroutine per element of rounds that calls
// CreateTask that many times, one call after the other, as a pool of
// workers does. The first caller's first call goes first, alone, and f
// holds it until the others wait; so the coalescer sees them all from its
// second request on.
func callInLoops(t *testing.T, c *Client, f *fakeCreates, rounds []int) {
	hold := make(chan struct{})
	f.hold = hold
	var wg sync.WaitGroup
	caller := func(i, n int) {
		wg.Go(func() {
			for j := range n {
				id := fmt.Sprintf("c%d-%d", i, j)
				if task, err := c.CreateTask(context.Background(), CreateTaskRequest{ID: id, Delay: "1h"}); err != nil || task.ID != id {
					t.Errorf("%s: %v, %v", id, task, err)
				}
			}
		})
	}
	caller(0, rounds[0])
	synctest.Wait() // held by f
	for i, n := range rounds[1:] {
		caller(i+1, n)
	}
	synctest.Wait() // waiting in the coalescer
	close(hold)
	wg.Wait()
}

// sizes is how many calls each request carried.
func (f *fakeCreates) carried() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int, len(f.sizes))
	for i, n := range f.sizes {
		out[i] = max(n, -n)
	}
	return out
}

// TestAnsweredCallersAreAwaited: ten callers calling in loops, one request
// in flight at a time: once the coalescer has seen them all, every
// request carries the ten, and none waits out its linger (the fake clock
// never moves).
func TestAnsweredCallersAreAwaited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCreates{}
		c := memClient(f, WithCreateBatching(100, 1))
		start := time.Now()
		callInLoops(t, c, f, slices.Repeat([]int{20}, 10))
		sizes := f.carried()
		// The second request learns how many callers there are. The first
		// caller may be a call ahead of the others from then on: then
		// the last request waits out the linger for it.
		if waited := time.Since(start); waited > DefaultCreateLinger {
			t.Errorf("requests waited %v for calls that did not come (requests of %v calls)", waited, sizes)
		}
		if len(sizes) < 4 || !slices.Equal(sizes[2:len(sizes)-1], slices.Repeat([]int{10}, len(sizes)-3)) {
			t.Fatalf("requests of %v calls: want every one from the third to the one before last to carry all ten", sizes)
		}
	})
}

// TestLingerForCallersThatLeft: when one of ten callers stops calling,
// the next request waits out its linger for it, once, and the requests
// after go with the nine at once.
func TestLingerForCallersThatLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCreates{}
		const linger = 3 * time.Millisecond
		c := memClient(f, WithCreateBatching(100, 1), WithCreateLinger(linger))
		start := time.Now()
		callInLoops(t, c, f, append([]int{5}, slices.Repeat([]int{15}, 9)...))
		sizes := f.carried()
		if waited := time.Since(start); waited != linger {
			t.Errorf("requests waited %v in all, want one linger, %v (requests of %v calls)", waited, linger, sizes)
		}
		if last := sizes[len(sizes)-8:]; !slices.Equal(last, slices.Repeat([]int{9}, 8)) {
			t.Fatalf("requests of %v calls: want the last eight to carry the nine callers left", sizes)
		}
	})
}

// TestLoneCallerNeverWaits: one caller's calls each go at once, alone.
func TestLoneCallerNeverWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCreates{}
		c := memClient(f)
		start := time.Now()
		callInLoops(t, c, f, []int{5})
		if waited := time.Since(start); waited != 0 {
			t.Errorf("a lone caller waited %v", waited)
		}
		if !slices.Equal(f.sizes, []int{1, 1, 1, 1, 1}) {
			t.Fatalf("requests %v (negative: a batch), want five of their own", f.sizes)
		}
	})
}

// TestOneRequestAtATime: ten callers calling in loops, four requests
// allowed in flight, each taking a while: as the ten never fill a request,
// one goes at a time, and from the third on each carries all ten.
func TestOneRequestAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCreates{delay: 5 * time.Millisecond}
		c := memClient(f, WithCreateBatching(100, 4))
		callInLoops(t, c, f, slices.Repeat([]int{20}, 10))
		sizes := f.carried()
		if f.mostActive != 1 {
			t.Errorf("%d requests in flight at once, want 1 (requests of %v calls)", f.mostActive, sizes)
		}
		if len(sizes) < 4 || !slices.Equal(sizes[2:len(sizes)-1], slices.Repeat([]int{10}, len(sizes)-3)) {
			t.Fatalf("requests of %v calls: want every one from the third to the one before last to carry all ten", sizes)
		}
	})
}

// TestFullRequestsGoBeside: thirty callers, requests of at most ten: a
// full request goes while others are in flight, up to the four allowed.
func TestFullRequestsGoBeside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCreates{delay: 5 * time.Millisecond}
		c := memClient(f, WithCreateBatching(10, 4))
		callInLoops(t, c, f, slices.Repeat([]int{10}, 30))
		sizes := f.carried()
		if f.mostActive < 2 || f.mostActive > 4 {
			t.Errorf("at most %d requests in flight at once, want 2 to 4 (requests of %v calls)", f.mostActive, sizes)
		}
		full := 0
		for _, n := range sizes {
			if n > 10 {
				t.Fatalf("requests of %v calls: want none over ten", sizes)
			}
			if n == 10 {
				full++
			}
		}
		if full < len(sizes)/2 {
			t.Errorf("requests of %v calls: want most of them full", sizes)
		}
	})
}
