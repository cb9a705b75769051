package tenant_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/tenant"
)

func TestRecordNil(t *testing.T) {
	rec := tenant.RecordFromContext(context.Background())
	if rec != nil {
		t.Fatalf("RecordFromContext(empty) = %p, want nil", rec)
	}
	// Every method is a no-op on nil and reports nothing.
	rec.SetTenant(tenant.Tenant{ID: "acme"})
	rec.Reject(tenant.Rejection{By: "tenant", Reason: "invalid_tenant", Status: 400})
	rec.Annotate("k", 1)
	if got, ok := rec.Tenant(); ok || !got.IsZero() {
		t.Errorf("nil Tenant() = %+v, %v; want zero, false", got, ok)
	}
	if got := rec.Rejection(); !got.IsZero() {
		t.Errorf("nil Rejection() = %+v, want zero", got)
	}
	if got := rec.Notes(); got != nil {
		t.Errorf("nil Notes() = %v, want nil", got)
	}
}

func TestNewRecordContext(t *testing.T) {
	ctx1, rec1 := tenant.NewRecordContext(context.Background())
	if rec1 == nil {
		t.Fatal("NewRecordContext returned a nil Record")
	}
	if got := tenant.RecordFromContext(ctx1); got != rec1 {
		t.Errorf("RecordFromContext = %p, want the Record NewRecordContext returned (%p)", got, rec1)
	}

	// A second outer middleware shares the first one's Record.
	ctx2, rec2 := tenant.NewRecordContext(ctx1)
	if rec2 != rec1 {
		t.Errorf("second NewRecordContext = %p, want the existing Record %p", rec2, rec1)
	}
	if ctx2 != ctx1 {
		t.Error("second NewRecordContext returned a new context although one Record was there")
	}

	// A fresh Record is empty.
	if _, ok := rec1.Tenant(); ok {
		t.Error("new Record has a tenant")
	}
	if !rec1.Rejection().IsZero() {
		t.Error("new Record has a rejection")
	}
	if n := len(rec1.Notes()); n != 0 {
		t.Errorf("new Record has %d notes", n)
	}

	// Separate requests get separate Records.
	_, other := tenant.NewRecordContext(context.Background())
	if other == rec1 {
		t.Error("two NewRecordContext calls on fresh contexts returned the same Record")
	}
}

func TestRecordTenant(t *testing.T) {
	_, rec := tenant.NewRecordContext(context.Background())
	rec.SetTenant(tenant.Tenant{ID: "acme", Subject: "user-1"})
	rec.SetTenant(tenant.Tenant{ID: "globex"})
	got, ok := rec.Tenant()
	if !ok || got.ID != "globex" || got.Subject != "" {
		t.Errorf("Tenant() = %+v, %v; want the last one set (globex), true", got, ok)
	}
}

func TestRecordFirstRejectionKept(t *testing.T) {
	_, rec := tenant.NewRecordContext(context.Background())
	first := tenant.Rejection{By: "authz", Reason: "expired", Status: 401}
	rec.Reject(first)
	rec.Reject(tenant.Rejection{By: "throttle", Reason: "rate", Status: 429})
	if diff := cmp.Diff(first, rec.Rejection()); diff != "" {
		t.Errorf("Rejection() mismatch (-want +got):\n%s", diff)
	}

	// A zero rejection records nothing, so a later real one still counts.
	_, rec = tenant.NewRecordContext(context.Background())
	rec.Reject(tenant.Rejection{})
	rec.Reject(first)
	if diff := cmp.Diff(first, rec.Rejection()); diff != "" {
		t.Errorf("Rejection() after a zero one mismatch (-want +got):\n%s", diff)
	}
}

func TestRecordAnnotate(t *testing.T) {
	_, rec := tenant.NewRecordContext(context.Background())
	rec.Annotate("remaining", 10)
	rec.Annotate("limit", 100)
	rec.Annotate("window", "1m")
	rec.Annotate("remaining", 9) // replaces in place

	want := []tenant.Note{{Key: "remaining", Value: 9}, {Key: "limit", Value: 100}, {Key: "window", Value: "1m"}}
	notes := rec.Notes()
	if diff := cmp.Diff(want, notes); diff != "" {
		t.Errorf("Notes() mismatch (-want +got):\n%s", diff)
	}

	// Notes returns a copy: changing it changes nothing in the Record.
	notes[0].Value = "changed"
	_ = append(notes[:1], tenant.Note{Key: "injected"}) // overwrites notes[1]
	if diff := cmp.Diff(want, rec.Notes()); diff != "" {
		t.Errorf("Notes() after changing a returned slice (-want +got):\n%s", diff)
	}
}

func TestRecordConcurrent(t *testing.T) {
	const n = 50
	_, rec := tenant.NewRecordContext(context.Background())

	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			id := strconv.Itoa(i)
			rec.SetTenant(tenant.Tenant{ID: "t" + id, Subject: "s" + id})
			rec.Reject(tenant.Rejection{By: "mw" + id, Reason: "r" + id, Status: 400 + i})
			rec.Annotate("shared", i)
			rec.Annotate("note"+id, i)
			_ = rec.Notes()
			_, _ = rec.Tenant()
			_ = rec.Rejection()
		})
	}
	close(start)
	wg.Wait()

	// The tenant is one goroutine's, whole.
	tn, ok := rec.Tenant()
	if !ok {
		t.Fatal("no tenant recorded")
	}
	i, err := strconv.Atoi(tn.ID[1:])
	if err != nil || i < 0 || i >= n || tn.Subject != "s"+tn.ID[1:] {
		t.Errorf("Tenant() = %+v, want a tenant set by one goroutine", tn)
	}

	// The rejection is one goroutine's, whole.
	rej := rec.Rejection()
	j, err := strconv.Atoi(rej.By[2:])
	if err != nil || j < 0 || j >= n || rej.Reason != "r"+rej.By[2:] || rej.Status != 400+j {
		t.Errorf("Rejection() = %+v, want a rejection made by one goroutine", rej)
	}

	// Every goroutine's note is there once; "shared" is there once and
	// first, because every goroutine wrote it before its own note.
	notes := rec.Notes()
	if len(notes) != n+1 {
		t.Fatalf("len(Notes()) = %d, want %d", len(notes), n+1)
	}
	if notes[0].Key != "shared" {
		t.Errorf("Notes()[0].Key = %q, want shared", notes[0].Key)
	}
	seen := map[string]bool{}
	for _, note := range notes {
		if seen[note.Key] {
			t.Errorf("note %q recorded twice", note.Key)
		}
		seen[note.Key] = true
		if note.Key == "shared" {
			continue
		}
		if want := note.Key[len("note"):]; strconv.Itoa(note.Value.(int)) != want {
			t.Errorf("note %q = %v, want %s", note.Key, note.Value, want)
		}
	}
	for i := range n {
		if !seen["note"+strconv.Itoa(i)] {
			t.Errorf("note%d missing", i)
		}
	}
}
