package tenancykafka_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancykafka"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

func mustStamp(t *testing.T, s *stamp.Signer, ctx context.Context, body string) map[string]string {
	t.Helper()
	attrs, err := s.Stamp(ctx, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

// ran records, in order, "tenant/source body" of each message a handler
// ran, and the ID of each.
type ran struct {
	mu    sync.Mutex
	lines []string
	ids   map[string]string // body → message ID
	ch    chan struct{}
}

func (r *ran) handler() message.Handler {
	return message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		tn, _ := tenant.FromContext(ctx)
		r.mu.Lock()
		r.lines = append(r.lines, tn.ID+"/"+tn.Source.String()+" "+string(m.Body)+" "+m.Source)
		r.ids[string(m.Body)] = m.ID
		r.mu.Unlock()
		r.ch <- struct{}{}
		return nil
	})
}

// TestStampedEndToEnd: messages stamped by the producing service and
// produced keyed by their tenant run through the whole stack as the
// tenant their stamp proves, each tenant's in the order it was produced,
// with the ID Publish returned; a stamp of another key, a stamp of
// another body and a record without a stamp are dead-lettered with the
// stamp's reason and never run.
func TestStampedEndToEnd(t *testing.T) {
	c := newCluster(t, 4, "orders", "orders.dead")
	clk := messagetest.NewClock()
	s := messagetest.NewSigner(t, clk.Now)
	v := messagetest.NewVerifier(t, s, clk.Now)
	stack, err := tenancy.New(tenancy.WithMessageTrust(stamp.Trusted(v)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := tenancykafka.NewProducer(newClient(t, c), "orders")
	if err != nil {
		t.Fatal(err)
	}
	acme, globex := messagetest.As("acme"), messagetest.As("globex")
	ids := map[string]string{}
	for i := range 5 {
		for _, b := range []struct {
			ctx  context.Context
			body string
		}{{acme, "a" + string(rune('1'+i))}, {globex, "g" + string(rune('1'+i))}} {
			ids[b.body] = publish(t, p, b.ctx, b.body, mustStamp(t, s, b.ctx, b.body))
		}
	}
	forged := publish(t, p, acme, "forged", mustStamp(t, messagetest.NewSigner(t, clk.Now), acme, "forged"))
	tampered := publish(t, p, acme, "tampered-changed", mustStamp(t, s, acme, "tampered"))
	unsigned := publish(t, p, globex, "unsigned", map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})

	r := &ran{ids: map[string]string{}, ch: make(chan struct{}, 100)}
	stop := run(t, newConsumer(t, c, "orders"), stack.WrapMessages(r.handler()))
	for range 10 {
		<-r.ch
	}
	dead := readDeadLetters(t, c, "orders.dead", 3)
	stop()

	r.mu.Lock()
	defer r.mu.Unlock()
	var gotAcme, gotGlobex []string
	for _, l := range r.lines {
		switch {
		case strings.HasPrefix(l, "acme/token "):
			gotAcme = append(gotAcme, l)
		case strings.HasPrefix(l, "globex/token "):
			gotGlobex = append(gotGlobex, l)
		default:
			t.Errorf("ran %q, want as acme or globex, verified by their stamps", l)
		}
	}
	wantAcme := []string{"acme/token a1 orders", "acme/token a2 orders", "acme/token a3 orders", "acme/token a4 orders", "acme/token a5 orders"}
	if diff := cmp.Diff(wantAcme, gotAcme); diff != "" {
		t.Errorf("acme's messages (-want +got):\n%s", diff)
	}
	wantGlobex := []string{"globex/token g1 orders", "globex/token g2 orders", "globex/token g3 orders", "globex/token g4 orders", "globex/token g5 orders"}
	if diff := cmp.Diff(wantGlobex, gotGlobex); diff != "" {
		t.Errorf("globex's messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ids, r.ids); diff != "" {
		t.Errorf("message IDs, by body (-Publish's +the handler's):\n%s", diff)
	}
	reasons := map[string]string{}
	for id, d := range dead {
		reasons[id] = d.key + " " + d.reason
		if d.headers[stamp.Attribute] == "" && id != unsigned {
			t.Errorf("dead letter %s lost its stamp header", id)
		}
	}
	if diff := cmp.Diff(map[string]string{
		forged:   "acme stamp:signature",
		tampered: "acme stamp:body_digest",
		unsigned: "globex stamp:missing",
	}, reasons); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
}
