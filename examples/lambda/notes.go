package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

// meterNotesCreated counts the notes a tenant wrote.
const meterNotesCreated = "notes.created"

// maxNoteBytes bounds a note's content.
const maxNoteBytes = 64 << 10

// note is a tenant's note: content of any type, text or binary, with
// tags.
type note struct {
	ID          string   `json:"id"`
	ContentType string   `json:"content_type"`
	Size        int      `json:"size"`
	Tags        []string `json:"tags,omitempty"`
	content     []byte
}

// notes keeps every tenant's notes in memory, for as long as the
// function's environment lives. Its methods take the tenant from the
// request's context, never from an argument, so no handler can name
// another tenant's notes.
type notes struct {
	mu       sync.Mutex
	byTenant map[string][]*note
}

func newNotes() *notes { return &notes{byTenant: map[string][]*note{}} }

// routes returns the service's routes, each requiring a verified tenant:
//
//	POST /notes        a note of the body, tagged with each X-Note-Tag: 201 and its metadata
//	GET  /notes        the tenant's notes' metadata
//	GET  /notes/{id}   a note's content, with its type and one X-Note-Tag per tag
func (s *notes) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("POST /notes", tenant.Require(http.HandlerFunc(s.create)))
	mux.Handle("GET /notes", tenant.Require(http.HandlerFunc(s.list)))
	mux.Handle("GET /notes/{id}", tenant.Require(http.HandlerFunc(s.get)))
	return mux
}

func (s *notes) create(w http.ResponseWriter, r *http.Request) {
	t, _ := tenant.FromContext(r.Context())
	content, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNoteBytes))
	if err != nil {
		tenant.WriteProblem(w, tenant.Problem{Status: http.StatusRequestEntityTooLarge, Detail: "A note holds at most 64 KiB."})
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	s.mu.Lock()
	n := &note{
		ID:          "n" + strconv.Itoa(len(s.byTenant[t.ID])+1),
		ContentType: ct,
		Size:        len(content),
		Tags:        r.Header.Values("X-Note-Tag"),
		content:     content,
	}
	s.byTenant[t.ID] = append(s.byTenant[t.ID], n)
	s.mu.Unlock()
	meter.Add(r.Context(), meterNotesCreated, 1)
	w.Header().Set("Location", "/notes/"+n.ID)
	writeJSON(w, http.StatusCreated, n)
}

func (s *notes) list(w http.ResponseWriter, r *http.Request) {
	t, _ := tenant.FromContext(r.Context())
	s.mu.Lock()
	list := append([]*note{}, s.byTenant[t.ID]...)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}

func (s *notes) get(w http.ResponseWriter, r *http.Request) {
	t, _ := tenant.FromContext(r.Context())
	var found *note
	s.mu.Lock()
	for _, n := range s.byTenant[t.ID] {
		if n.ID == r.PathValue("id") {
			found = n
		}
	}
	s.mu.Unlock()
	if found == nil {
		tenant.WriteProblem(w, tenant.Problem{Status: http.StatusNotFound, Detail: "The tenant has no such note."})
		return
	}
	w.Header().Set("Content-Type", found.ContentType)
	for _, tag := range found.Tags {
		w.Header().Add("X-Note-Tag", tag)
	}
	w.Write(found.content)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
