package throttle_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// TestFairShareHandlerPanicFreesTheWorker: a handler that panics while
// holding FairShare's only worker gives the worker back: the message that
// waited for it runs, and so does the next one, at once.
func TestFairShareHandlerPanicFreesTheWorker(t *testing.T) {
	f, err := throttle.NewFairShare(1)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 3)
	boom := make(chan struct{})
	inner := f.MessageMiddleware()(message.HandlerFunc(func(_ context.Context, m *message.Message) error {
		started <- string(m.Body)
		if string(m.Body) == "poison" {
			<-boom
			panic("handler bug")
		}
		return nil
	}))
	as := func(id string) message.Handler {
		return message.BoundQueue(id, tenant.DefaultTiers.MustLookup("basic"))(inner)
	}
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_ = as("acme").HandleMessage(context.Background(), &message.Message{ID: "1", Body: []byte("poison")})
	}()
	if got := <-started; got != "poison" {
		t.Fatalf("started %s", got)
	}
	waited := make(chan error, 1)
	go func() {
		waited <- as("globex").HandleMessage(context.Background(), &message.Message{ID: "2", Body: []byte("waits")})
	}()
	for f.Waiting() != 1 {
		runtime.Gosched()
	}
	close(boom)
	if p := <-panicked; p != "handler bug" {
		t.Fatalf("recovered %v", p)
	}
	if err := <-waited; err != nil {
		t.Fatalf("the waiting message: %v, want it run", err)
	}
	if err := as("initech").HandleMessage(context.Background(), &message.Message{ID: "3", Body: []byte("next")}); err != nil {
		t.Fatalf("the next message: %v, want it run at once", err)
	}
	if got := []string{<-started, <-started}; got[0] != "waits" || got[1] != "next" {
		t.Errorf("started %v", got)
	}
	if n := f.Waiting(); n != 0 {
		t.Errorf("%d waiting", n)
	}
}
