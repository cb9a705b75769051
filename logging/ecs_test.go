package logging_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/logging"
)

// Task and container metadata as the v4 endpoint of a Fargate task serves
// them (abridged from the Amazon ECS developer guide).
const (
	ecsTaskJSON = `{
  "Cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
  "TaskARN": "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
  "Family": "orders",
  "Revision": "3",
  "DesiredStatus": "RUNNING",
  "KnownStatus": "RUNNING",
  "Limits": {"CPU": 0.25, "Memory": 512},
  "PullStartedAt": "2020-10-08T20:47:16.053330955Z",
  "PullStoppedAt": "2020-10-08T20:47:19.592684631Z",
  "AvailabilityZone": "us-west-2c",
  "LaunchType": "FARGATE",
  "Containers": [{"DockerId": "e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603", "Name": "app"}]
}`
	ecsContainerJSON = `{
  "DockerId": "e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603",
  "Name": "app",
  "DockerName": "app",
  "Image": "111122223333.dkr.ecr.us-west-2.amazonaws.com/orders:latest",
  "Labels": {
    "com.amazonaws.ecs.cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
    "com.amazonaws.ecs.container-name": "app",
    "com.amazonaws.ecs.task-definition-family": "orders",
    "com.amazonaws.ecs.task-definition-version": "3"
  },
  "DesiredStatus": "RUNNING",
  "KnownStatus": "RUNNING",
  "Limits": {"CPU": 2, "Memory": 512},
  "Type": "NORMAL"
}`
)

// ecsPath is the path part of ECS_CONTAINER_METADATA_URI_V4.
const ecsPath = "/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603"

// ecsServer serves task and container metadata through the given handlers
// and points ECS_CONTAINER_METADATA_URI_V4 at itself.
func ecsServer(t *testing.T, task, container http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ecsPath+"/task", task)
	mux.HandleFunc("GET "+ecsPath, container)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Setenv(logging.ECSMetadataEnv, srv.URL+ecsPath)
	return srv
}

func serveJSON(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}
}

var ecsWant = []slog.Attr{
	slog.String(logging.KeyECSCluster, "arn:aws:ecs:us-west-2:111122223333:cluster/default"),
	slog.String(logging.KeyECSTaskARN, "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3"),
	slog.String(logging.KeyECSTaskDefinition, "orders:3"),
	slog.String(logging.KeyECSContainer, "app"),
}

// attrEqual compares slog.Attrs by their Equal method.
var attrEqual = cmp.Comparer(func(a, b slog.Attr) bool { return a.Equal(b) })

func TestECSMetadata(t *testing.T) {
	srv := ecsServer(t, serveJSON(ecsTaskJSON), serveJSON(ecsContainerJSON))
	warn, warnings := newLogger()
	got := logging.ECSMetadata(context.Background(), logging.WithECSClient(srv.Client()), logging.WithECSWarnings(warn))
	if diff := cmp.Diff(ecsWant, got, attrEqual); diff != "" {
		t.Errorf("attrs (-want +got):\n%s", diff)
	}
	if out := warnings.String(); out != "" {
		t.Errorf("warnings: %s", out)
	}

	// Every record carries them, at the top level.
	logger, buf := newLogger(logging.WithAttrs(got...))
	logger.WithGroup("g").InfoContext(fullContext(t), "m", "k", "v")
	want := with(fullFields, "level", "INFO", "msg", "m", "g", map[string]any{"k": "v"},
		"ecs_cluster", "arn:aws:ecs:us-west-2:111122223333:cluster/default",
		"ecs_task_arn", "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
		"ecs_task_definition", "orders:3", "ecs_container", "app")
	if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
		t.Errorf("line (-want +got):\n%s", diff)
	}
}

func TestECSMetadataOutsideECS(t *testing.T) {
	t.Setenv(logging.ECSMetadataEnv, "restored after the test")
	os.Unsetenv(logging.ECSMetadataEnv)
	warn, warnings := newLogger()
	if got := logging.ECSMetadata(context.Background(), logging.WithECSWarnings(warn)); got != nil {
		t.Errorf("ECSMetadata = %v outside ECS, want nil", got)
	}
	if out := warnings.String(); out != "" {
		t.Errorf("warned outside ECS: %s", out)
	}
}

func TestECSMetadataFailures(t *testing.T) {
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", code) }
	}
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	tests := []struct {
		name            string
		task, container http.HandlerFunc
		ctx             func(*testing.T) context.Context
	}{
		{name: "task 500", task: status(http.StatusInternalServerError), container: serveJSON(ecsContainerJSON)},
		{name: "container 404", task: serveJSON(ecsTaskJSON), container: status(http.StatusNotFound)},
		{name: "task bad JSON", task: serveJSON(`{"Cluster": `), container: serveJSON(ecsContainerJSON)},
		{name: "container bad JSON", task: serveJSON(ecsTaskJSON), container: serveJSON(`["not an object"]`)},
		{
			name: "task hangs past the deadline", task: hang, container: serveJSON(ecsContainerJSON),
			ctx: func(t *testing.T) context.Context {
				// A parent deadline shorter than ECSMetadata's own keeps the
				// test fast; the handler never answers either way.
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
		},
		{
			name: "parent cancelled", task: serveJSON(ecsTaskJSON), container: serveJSON(ecsContainerJSON),
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := ecsServer(t, tc.task, tc.container)
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx(t)
			}
			warn, warnings := newLogger()
			if got := logging.ECSMetadata(ctx, logging.WithECSClient(srv.Client()), logging.WithECSWarnings(warn)); got != nil {
				t.Errorf("ECSMetadata = %v, want nil", got)
			}
			checkOneWarning(t, warnings.String())
		})
	}

	t.Run("unreachable endpoint", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		t.Setenv(logging.ECSMetadataEnv, srv.URL+ecsPath)
		warn, warnings := newLogger()
		if got := logging.ECSMetadata(context.Background(), logging.WithECSWarnings(warn)); got != nil {
			t.Errorf("ECSMetadata = %v, want nil", got)
		}
		checkOneWarning(t, warnings.String())
	})

	t.Run("nil logger warns through slog.Default", func(t *testing.T) {
		srv := ecsServer(t, status(http.StatusInternalServerError), serveJSON(ecsContainerJSON))
		prev := slog.Default()
		t.Cleanup(func() { slog.SetDefault(prev) })
		buf := new(syncBuffer)
		slog.SetDefault(slog.New(jsonHandler(buf)))
		if got := logging.ECSMetadata(context.Background(), logging.WithECSClient(srv.Client())); got != nil {
			t.Errorf("ECSMetadata = %v, want nil", got)
		}
		checkOneWarning(t, buf.String())
	})
}

// TestECSMetadataOwnTimeout checks the fetch's own bound, with a parent
// context that has no deadline.
func TestECSMetadataOwnTimeout(t *testing.T) {
	srv := ecsServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, serveJSON(ecsContainerJSON))
	warn, warnings := newLogger()
	got := logging.ECSMetadata(context.Background(), logging.WithECSClient(srv.Client()),
		logging.WithECSWarnings(warn), logging.WithECSTimeout(50*time.Millisecond))
	if got != nil {
		t.Errorf("ECSMetadata = %v, want nil", got)
	}
	checkOneWarning(t, warnings.String())
}

func checkOneWarning(t *testing.T, out string) {
	t.Helper()
	recs := decodeLines(t, out)
	if len(recs) != 1 {
		t.Fatalf("got %d records, want one warning:\n%s", len(recs), out)
	}
	if recs[0]["level"] != "WARN" || !strings.Contains(recs[0]["msg"].(string), "ECS") || recs[0]["error"] == nil {
		t.Errorf("warning = %v, want level WARN, a message naming ECS and the error", recs[0])
	}
}

// A 200 without the task's fields names nothing rather than writing empty
// fields and a task definition of ":".
func TestECSMetadataIncomplete(t *testing.T) {
	srv := ecsServer(t, serveJSON(`{"Cluster": "prod"}`), serveJSON(ecsContainerJSON))
	warn, warnings := newLogger()
	if got := logging.ECSMetadata(context.Background(), logging.WithECSClient(srv.Client()), logging.WithECSWarnings(warn)); got != nil {
		t.Errorf("ECSMetadata = %v, want nil", got)
	}
	checkOneWarning(t, warnings.String())
}
