package kinesisstream_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/internal/syncbuf"
	"github.com/tenancykit/tenancy/internal/testservers"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/kinesisstream"
)

// TestKinesisDownThenUp: Kinesis goes away while a record is being
// handled, so its dead letter cannot be written; reads fail while it is
// down. Once it is back (with its data: a LevelDB store), the dead letter
// is written, reading resumes after the last record read, and no record
// is lost or handled twice.
func TestKinesisDownThenUp(t *testing.T) {
	srv := testservers.Kinesalite(t, "--path", t.TempDir())
	client := kinesisClient(t, srv.Endpoint)
	const stream = "orders"
	createStream(t, client, stream, 1)
	createStream(t, client, stream+"-dead", 1)
	clk := messagetest.NewClock()
	logs := &syncbuf.Buffer{}
	p := newPublisher(t, client, stream)
	cp := &kinesisstream.MemoryCheckpoints{}
	c := newConsumer(t, client, client, stream, cp, kinesisstream.WithClock(clk.Now), kinesisstream.WithRetryDelay(time.Second),
		kinesisstream.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	var rec messagetest.Recorder
	h := acme(rec.Handler(func(_ context.Context, m *message.Message) error {
		if string(m.Body) == "r2" {
			srv.Stop()
			return message.Reject("invalid_order")
		}
		return nil
	}))
	r1 := publish(t, p, "acme", "r1", nil)
	r2 := publish(t, p, "acme", "r2", nil)
	r3 := publish(t, p, "acme", "r3", nil)

	n, err := c.Poll(context.Background(), h)
	if n != 3 || err == nil {
		t.Fatalf("Poll = %d, %v; want 3 handled and the dead letter's error", n, err)
	}
	if got := checkpointOf(t, cp, r1); got != seqOf(r1) {
		t.Errorf("checkpoint %s, want r1's %s: r2 is not settled", got, seqOf(r1))
	}
	clk.Add(time.Second)
	if n, err := c.Poll(context.Background(), h); n != 0 || err == nil {
		t.Fatalf("Poll while Kinesis is down = %d, %v; want an error", n, err)
	}
	if _, err := p.Publish(messagetest.As("acme"), []byte("r4"), nil); err == nil {
		t.Fatal("Publish while Kinesis is down: no error")
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	r4 := publish(t, p, "acme", "r4", nil)
	poll(t, c, h, 1) // r4; the dead letter waits its retry delay
	if dl := deadLetters(t, client, stream); len(dl) != 0 {
		t.Errorf("dead letters %v before their retry delay", dl)
	}
	clk.Add(time.Second)
	poll(t, c, h, 0) // the dead letter
	if diff := cmp.Diff(map[string]string{r2: "handler:invalid_order after 1"}, deadLetters(t, client, stream)); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{r1, r2, r3, r4}, rec.Delivered()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "writing a dead letter failed") {
		t.Errorf("the failed dead letter was not logged:\n%s", logs)
	}
	if got := checkpointOf(t, cp, r1); got != seqOf(r4) {
		t.Errorf("checkpoint %s, want r4's %s", got, seqOf(r4))
	}
}
