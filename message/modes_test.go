package message_test

import (
	"context"
	"github.com/tenancykit/tenancy/internal/messagetest"
	"strings"
	"testing"

	"github.com/tenancykit/tenancy/internal/metrictest"
	"github.com/tenancykit/tenancy/internal/sessionname"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/tenant"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// summary is what the mode tests compare of a tenant.
func summary(t tenant.Tenant) string {
	return t.ID + "/" + t.Tier.String() + "/" + t.Source.String()
}

// TestBoundQueue: every message of a silo queue runs as its tenant,
// assigned by the program, whatever its attributes claim.
func TestBoundQueue(t *testing.T) {
	q := memqueue.New("acme-orders")
	id := q.Publish([]byte("a"), map[string]string{"tenant": "globex"})
	var got messagetest.Seen
	q.Drain(context.Background(), message.BoundQueue("acme", tenant.DefaultTiers.MustLookup("premium"))(got.Handler()))
	tn, _ := got.Tenant(id)
	if summary(tn) != "acme/premium/assigned" {
		t.Errorf("tenant = %s, want acme/premium/assigned", summary(tn))
	}
	defer func() {
		if p := recover(); p == nil || !strings.HasPrefix(p.(string), "message: BoundQueue:") {
			t.Errorf("BoundQueue with an empty tenant ID: panic %v", p)
		}
	}()
	message.BoundQueue("", tenant.Tier{})
}

// TestUnverifiedAttribute: the attribute names a claimed tenant, its
// tier another; a message without a valid one is refused and counted.
func TestUnverifiedAttribute(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mw := message.UnverifiedAttribute("tenant", message.WithTierAttribute("tier"),
		message.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	q := memqueue.New("pool")
	ok := q.Publish([]byte("a"), map[string]string{"tenant": "acme", "tier": "standard"})
	lowest := q.Publish([]byte("a"), map[string]string{"tenant": "globex"})
	refused := map[string]string{
		q.Publish([]byte("a"), nil):                                                   "unverified_attribute:tenant_missing",
		q.Publish([]byte("a"), map[string]string{"tenant": "bad\nid"}):                "unverified_attribute:tenant_invalid",
		q.Publish([]byte("a"), map[string]string{"tenant": "acme", "tier": "golden"}): "unverified_attribute:tier_invalid",
	}
	var got messagetest.Seen
	q.Drain(context.Background(), mw(got.Handler()))
	if tn, _ := got.Tenant(ok); summary(tn) != "acme/standard/claimed" {
		t.Errorf("tenant = %s, want acme/standard/claimed", summary(tn))
	}
	if tn, _ := got.Tenant(lowest); summary(tn) != "globex/basic/claimed" {
		t.Errorf("tenant without a tier = %s, want globex/basic/claimed", summary(tn))
	}
	checkDead(t, q, refused)
	if n := metrictest.Sum(t, reader, "tenancy.message.refused", "tenancy.trust", "unverified_attribute"); n != 3 {
		t.Errorf("refusals counted: %d, want 3", n)
	}
}

func checkDead(t *testing.T, q *memqueue.Queue, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, d := range q.DeadLetters() {
		got[d.Message.ID] = d.Reason
	}
	for id, reason := range want {
		if got[id] != reason {
			t.Errorf("message %s: dead-lettered with %q, want %q", id, got[id], reason)
		}
	}
	if len(got) != len(want) {
		t.Errorf("dead letters %v, want %v", got, want)
	}
}

const roleID = "AROAEXAMPLEID123456"

// TestSenderSession: a message sent from the tenant role's session named
// for the tenant runs as that tenant; any other sender is refused.
func TestSenderSession(t *testing.T) {
	mw := message.SenderSession(roleID, "tenant")
	q := memqueue.New("orders")
	acme := roleID + ":tenant-acme"
	ok := q.Publish([]byte("a"), map[string]string{"tenant": "acme"}, memqueue.WithSenderID(acme))
	// An ID awscreds must change for STS: the session name ends in a hash.
	odd := q.Publish([]byte("a"), map[string]string{"tenant": "Acme Corp"}, memqueue.WithSenderID(roleID+":"+sessionname.For("tenant-", "Acme Corp")))
	refused := map[string]string{
		q.Publish([]byte("a"), map[string]string{"tenant": "globex"}, memqueue.WithSenderID(acme)):                          "sender_session:sender_mismatch",
		q.Publish([]byte("a"), map[string]string{"tenant": "acme"}):                                                         "sender_session:sender_missing",
		q.Publish([]byte("a"), map[string]string{"tenant": "acme"}, memqueue.WithSenderID("AIDAUSERID")):                    "sender_session:sender_not_session",
		q.Publish([]byte("a"), map[string]string{"tenant": "acme"}, memqueue.WithSenderID("AROAOTHERROLE:tenant-acme")):     "sender_session:sender_role",
		q.Publish([]byte("a"), nil, memqueue.WithSenderID(acme)):                                                            "sender_session:tenant_missing",
		q.Publish([]byte("a"), map[string]string{"tenant": "Acme Corp"}, memqueue.WithSenderID(roleID+":tenant-Acme-Corp")): "sender_session:sender_mismatch",
	}
	var got messagetest.Seen
	q.Drain(context.Background(), mw(got.Handler()))
	if tn, _ := got.Tenant(ok); summary(tn) != "acme/basic/peer" {
		t.Errorf("tenant = %s, want acme/basic/peer", summary(tn))
	}
	if tn, _ := got.Tenant(odd); tn.ID != "Acme Corp" {
		t.Errorf("tenant = %q, want Acme Corp", tn.ID)
	}
	checkDead(t, q, refused)
}

// TestSenderSessionNeedsARoleID: a role ID that is not one panics, naming
// what to give.
func TestSenderSessionNeedsARoleID(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "AROA") {
			t.Errorf("panic %v, want one naming a role's unique ID", p)
		}
	}()
	message.SenderSession("arn:aws:iam::123456789012:role/tenant", "tenant")
}
