package logging

import (
	"context"
	"encoding/json"
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

// ECSMetadata returns the cluster, task ARN, task definition
// (family:revision) and container name of the ECS or Fargate task the
// process runs in, read once from the task metadata endpoint v4, for
// [WithAttrs]: after an incident they tell which deployed version served
// which tenant, as a FireLens sidecar would, without one.
//
// Outside ECS (ECS_CONTAINER_METADATA_URI_V4 unset) it returns nothing.
// When the endpoint fails or takes longer than two seconds it returns
// nothing and logs one warning to warn (slog.Default() when nil).
func ECSMetadata(ctx context.Context, client *http.Client, warn *slog.Logger) []slog.Attr {
	base := os.Getenv(ECSMetadataEnv)
	if base == "" {
		return nil
	}
	if client == nil {
		client = http.DefaultClient
	}
	if warn == nil {
		warn = slog.Default()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
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
