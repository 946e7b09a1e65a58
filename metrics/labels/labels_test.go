package labels

import (
	"fmt"
	"sync"
	"testing"
)

func TestLimiter(t *testing.T) {
	l := New(2)
	for _, c := range []struct{ in, want string }{
		{"a", "a"}, {"b", "b"}, {"c", Other}, {"a", "a"}, {"b", "b"}, {"d", Other},
	} {
		if got := l.Value(c.in); got != c.want {
			t.Errorf("Value(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	var none *Limiter
	if none.Value("x") != "x" {
		t.Error("a nil limiter changed a value")
	}
}

// TestLimiterConcurrent: however many goroutines ask at once, no more than
// max values are admitted.
func TestLimiterConcurrent(t *testing.T) {
	l := New(10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := map[string]bool{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				v := fmt.Sprint(i)
				if got := l.Value(v); got != Other {
					mu.Lock()
					admitted[got] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(admitted) != 10 {
		t.Fatalf("%d values admitted, want 10", len(admitted))
	}
}
