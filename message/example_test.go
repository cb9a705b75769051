package message_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/tenant"
)

// A worker of an internal pool runs each message as the tenant its
// attribute names; a message that names none is refused by the trust
// mode, and one the handler cannot read is rejected by the handler: both
// are dead-lettered with the reason, and neither retried.
func Example() {
	q := memqueue.New("jobs")
	q.Publish([]byte(`{"job":1}`), map[string]string{"tenant": "acme"})
	q.Publish([]byte(`{"job":2}`), nil)
	q.Publish([]byte(`job 3`), map[string]string{"tenant": "acme"})

	handler := message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		if !json.Valid(m.Body) {
			return message.Reject("invalid_job")
		}
		t, _ := tenant.FromContext(ctx)
		fmt.Printf("%s for %s (%s)\n", m.Body, t.ID, t.Source)
		return nil
	})
	q.Drain(context.Background(), message.UnverifiedAttribute("tenant")(handler))
	for _, d := range q.DeadLetters() {
		fmt.Printf("dead-lettered %s: %s\n", d.Message.Body, d.Reason)
	}
	// Output:
	// {"job":1} for acme (claimed)
	// dead-lettered {"job":2}: unverified_attribute:tenant_missing
	// dead-lettered job 3: handler:invalid_job
}
