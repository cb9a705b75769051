package main

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// tenantLoad is the traffic one tenant sends: requests at a fixed rate,
// each on its own (an open loop: a slow answer does not slow the sender),
// at most maxInFlight at once, each given up after timeout.
type tenantLoad struct {
	tenant, tier string
	rate         float64 // requests per second
	maxInFlight  int
	timeout      time.Duration
	client       string // what kind of client, for the report
}

// outcome is what became of one request.
type outcome struct {
	done    time.Duration // since the start of the run, when it ended
	latency time.Duration // from sending to the end of the answer, or failure
	status  int           // 0 when no answer came: timeout or connection error
}

// tally collects one tenant's outcomes; safe for concurrent use.
type tally struct {
	mu        sync.Mutex
	scheduled int
	skipped   int // not sent: maxInFlight requests were in flight
	outcomes  []outcome
}

func (t *tally) add(o outcome) {
	t.mu.Lock()
	t.outcomes = append(t.outcomes, o)
	t.mu.Unlock()
}

// generate sends l's requests for duration from start, with token, to url,
// through client; each request runs in a goroutine of wg. It returns when
// the last request is sent, or when ctx is done.
func generate(ctx context.Context, start time.Time, duration time.Duration, l tenantLoad, client *http.Client, url, token string, t *tally, wg *sync.WaitGroup) {
	interval := time.Duration(float64(time.Second) / l.rate)
	n := int(duration / interval)
	t.mu.Lock()
	t.scheduled = n
	t.mu.Unlock()

	inFlight := make(chan struct{}, l.maxInFlight)
	timer := time.NewTimer(time.Hour) // Reset before each wait
	defer timer.Stop()
	for i := range n {
		// Request i goes at start + i·interval; a sender that fell behind
		// catches up rather than sending fewer.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case inFlight <- struct{}{}:
		default:
			t.mu.Lock()
			t.skipped++
			t.mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-inFlight }()
			t.add(send(ctx, start, client, url, token, l.timeout))
		})
	}
}

// send sends one request and reads the whole answer.
func send(ctx context.Context, start time.Time, client *http.Client, url, token string, timeout time.Duration) outcome {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sent := time.Now()
	status := 0
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err == nil {
		req.Header.Set("Authorization", "Bearer "+token)
		var resp *http.Response
		resp, err = client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil {
				status = resp.StatusCode
			}
		}
	}
	end := time.Now()
	return outcome{done: end.Sub(start), latency: end.Sub(sent), status: status}
}
