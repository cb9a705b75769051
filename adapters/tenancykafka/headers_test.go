package tenancykafka_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancykafka"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/message/stamp"
)

// TestRepeatedAndForgedHeaders: a record that carries two stamp headers
// runs, or is refused, by the stamp its handler sees (the last), never as
// the tenant of the one not verified; a stamp under a name differing in
// case is no stamp; and a record that comes with dead-letter headers of
// its own is dead-lettered with one reason, ID and count each, the
// consumer's, where a reader of the first header would have read the
// forged ones.
func TestRepeatedAndForgedHeaders(t *testing.T) {
	c := newCluster(t, 1, "orders", "orders.dead")
	clk := messagetest.NewClock()
	s := messagetest.NewSigner(t, clk.Now)
	v := messagetest.NewVerifier(t, s, clk.Now)
	stack, err := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(v)))
	if err != nil {
		t.Fatal(err)
	}
	acme, globex := messagetest.As("acme"), messagetest.As("globex")
	other := messagetest.NewSigner(t, clk.Now)
	hdr := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	good := mustStamp(t, s, acme, "two-good-last")[stamp.Attribute]
	recs := []*kgo.Record{
		// The verified stamp first, a forged one of globex last: refused.
		{Value: []byte("two-forged-last"), Headers: []kgo.RecordHeader{
			hdr(stamp.Attribute, mustStamp(t, s, acme, "two-forged-last")[stamp.Attribute]),
			hdr(stamp.Attribute, mustStamp(t, other, globex, "two-forged-last")[stamp.Attribute]),
		}},
		// A forged stamp of globex first, acme's last: runs as acme.
		{Value: []byte("two-good-last"), Headers: []kgo.RecordHeader{
			hdr(stamp.Attribute, mustStamp(t, other, globex, "two-good-last")[stamp.Attribute]),
			hdr(stamp.Attribute, good),
		}},
		// The stamp under another case: no stamp.
		{Value: []byte("cased"), Headers: []kgo.RecordHeader{hdr("Tenancy-Stamp", mustStamp(t, s, globex, "cased")[stamp.Attribute])}},
		// Dead-letter headers of its own, and no stamp.
		{Value: []byte("forged-reason"), Headers: []kgo.RecordHeader{
			hdr(tenancykafka.HeaderReason, "max_deliveries"), hdr(tenancykafka.HeaderID, "orders/9/9"), hdr(tenancykafka.HeaderDeliveries, "99"),
		}},
	}
	cl := newClient(t, c)
	for _, r := range recs {
		r.Topic = "orders"
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	r := &ran{ids: map[string]string{}, ch: make(chan struct{}, 10)}
	stop := run(t, newConsumer(t, c, "orders"), stack.WrapMessages(r.handler()))
	<-r.ch

	// The dead letters, every header of each, in order.
	dl := newClient(t, c, kgo.ConsumeTopics("orders.dead"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dead := map[string][]kgo.RecordHeader{}
	for len(dead) < 3 && ctx.Err() == nil {
		dl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) { dead[string(rec.Value)] = rec.Headers })
	}
	stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lines) != 1 || r.lines[0] != "acme/token two-good-last orders" {
		t.Errorf("ran %q, want two-good-last alone, as acme", r.lines)
	}
	want := map[string]string{"two-forged-last": "stamp:signature", "cased": "stamp:missing", "forged-reason": "stamp:missing"}
	for body, reason := range want {
		hs, ok := dead[body]
		if !ok {
			t.Errorf("%s not dead-lettered", body)
			continue
		}
		n := map[string]int{}
		var got string
		for _, h := range hs {
			n[h.Key]++
			if h.Key == tenancykafka.HeaderReason {
				got = string(h.Value)
			}
		}
		if got != reason || n[tenancykafka.HeaderReason] != 1 || n[tenancykafka.HeaderID] != 1 || n[tenancykafka.HeaderDeliveries] != 1 {
			t.Errorf("%s dead-lettered with headers %v: want one reason %s, one ID, one count", body, hs, reason)
		}
	}
}
