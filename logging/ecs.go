package logging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// Keys of the ECS runtime metadata.
const (
	KeyECSCluster        = "ecs_cluster"
	KeyECSTaskARN        = "ecs_task_arn"
	KeyECSTaskDefinition = "ecs_task_definition"
	KeyECSContainer      = "ecs_container"
)

// ECSMetadataEnv is the variable ECS sets to the task metadata endpoint.
const ECSMetadataEnv = "ECS_CONTAINER_METADATA_URI_V4"

// ECSOption configures [ECSMetadata].
type ECSOption func(*ecsConfig)

type ecsConfig struct {
	client  *http.Client
	warn    *slog.Logger
	timeout time.Duration
}

// DefaultECSTimeout bounds the metadata fetch.
const DefaultECSTimeout = 2 * time.Second

// WithECSClient sets the HTTP client for the metadata endpoint. Default
// http.DefaultClient.
func WithECSClient(c *http.Client) ECSOption { return func(e *ecsConfig) { e.client = c } }

// WithECSWarnings sets where the one warning of a failed fetch goes.
// Default slog.Default().
func WithECSWarnings(l *slog.Logger) ECSOption { return func(e *ecsConfig) { e.warn = l } }

// WithECSTimeout bounds the fetch. Default [DefaultECSTimeout].
func WithECSTimeout(d time.Duration) ECSOption { return func(e *ecsConfig) { e.timeout = d } }

// ECSMetadata returns the cluster, task ARN, task definition
// (family:revision) and container name of the ECS or Fargate task the
// process runs in, read once from the task metadata endpoint v4, for
// [WithAttrs]: after an incident they tell which deployed version served
// which tenant, as a FireLens sidecar would, without one.
//
// Outside ECS (ECS_CONTAINER_METADATA_URI_V4 unset) it returns nothing.
// When the endpoint fails, answers without the task's fields, or takes
// longer than the timeout, it returns nothing and logs one warning.
func ECSMetadata(ctx context.Context, opts ...ECSOption) []slog.Attr {
	base := os.Getenv(ECSMetadataEnv)
	if base == "" {
		return nil
	}
	c := ecsConfig{client: http.DefaultClient, warn: slog.Default(), timeout: DefaultECSTimeout}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	client, warn := c.client, c.warn
	if client == nil {
		client = http.DefaultClient
	}
	if warn == nil {
		warn = slog.Default()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var task struct {
		Cluster  string `json:"Cluster"`
		TaskARN  string `json:"TaskARN"`
		Family   string `json:"Family"`
		Revision string `json:"Revision"`
	}
	var container struct {
		Name string `json:"Name"`
	}
	err := getJSON(ctx, client, base+"/task", &task)
	if err == nil {
		err = getJSON(ctx, client, base, &container)
	}
	if err == nil && (task.Cluster == "" || task.TaskARN == "" || task.Family == "" || container.Name == "") {
		err = errors.New("the metadata lacks the cluster, task ARN, family or container name")
	}
	if err != nil {
		warn.WarnContext(ctx, "logging: ECS task metadata unavailable; lines will not name the task", "error", err.Error())
		return nil
	}
	return []slog.Attr{
		slog.String(KeyECSCluster, task.Cluster),
		slog.String(KeyECSTaskARN, task.TaskARN),
		slog.String(KeyECSTaskDefinition, task.Family+":"+task.Revision),
		slog.String(KeyECSContainer, container.Name),
	}
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}
