package awskit_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/goleak"

	"github.com/tenancykit/tenancy/examples/internal/awskit"
	"github.com/tenancykit/tenancy/internal/testservers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLoadConfigLocalDefaults: with an endpoint and nothing in the
// environment, the region and the credentials are the local ones; a
// region the environment names wins.
func TestLoadConfigLocalDefaults(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	c, tr, err := awskit.LoadConfig(t.Context(), getenv, "http://127.0.0.1:1", "KINESIS_ENDPOINT")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	creds, err := c.Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != awskit.LocalRegion || creds.AccessKeyID != awskit.LocalAccessKey {
		t.Errorf("region %q, access key %q; want the local defaults", c.Region, creds.AccessKeyID)
	}
	if _, ok := c.HTTPClient.(*http.Client); !ok {
		t.Errorf("HTTP client %T, want the *http.Client over the returned transport", c.HTTPClient)
	}

	t.Setenv("AWS_REGION", "eu-west-1")
	env["AWS_REGION"] = "eu-west-1"
	c, tr, err = awskit.LoadConfig(t.Context(), getenv, "http://127.0.0.1:1", "KINESIS_ENDPOINT")
	if err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	if c.Region != "eu-west-1" {
		t.Errorf("region %q, want AWS_REGION's", c.Region)
	}

	t.Setenv("AWS_REGION", "")
	if _, _, err := awskit.LoadConfig(t.Context(), func(string) string { return "" }, "", "ORDERS_TABLE"); err == nil ||
		!strings.Contains(err.Error(), "ORDERS_TABLE") || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("no endpoint, no region: %v, want an error naming ORDERS_TABLE and AWS_REGION", err)
	}
}

func TestCheckStreamName(t *testing.T) {
	for name, ok := range map[string]bool{"order-events": true, "a.b_c-1": true, "order-events:dead": false, "": false, strings.Repeat("a", 129): false} {
		if err := awskit.CheckStreamName(name); (err == nil) != ok {
			t.Errorf("CheckStreamName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

// TestEnsureStream: a missing stream is created with the shards asked for
// and is ACTIVE on return; a stream that exists is kept with its own.
func TestEnsureStream(t *testing.T) {
	k := testservers.Kinesalite(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, tr, err := awskit.LoadConfig(ctx, func(string) string { return "" }, k.Endpoint, "KINESIS_ENDPOINT")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	client := kinesis.NewFromConfig(c, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(k.Endpoint) })
	shards := func(stream string) int32 {
		t.Helper()
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			t.Fatal(err)
		}
		if s := out.StreamDescriptionSummary.StreamStatus; s != "ACTIVE" {
			t.Errorf("stream %s is %s, want ACTIVE", stream, s)
		}
		return aws.ToInt32(out.StreamDescriptionSummary.OpenShardCount)
	}
	if err := awskit.EnsureStream(ctx, client, "events", awskit.LocalStreamShards); err != nil {
		t.Fatal(err)
	}
	if n := shards("events"); n != awskit.LocalStreamShards {
		t.Errorf("created with %d shards, want %d", n, awskit.LocalStreamShards)
	}
	if err := awskit.EnsureStream(ctx, client, "events", 1); err != nil {
		t.Fatal(err)
	}
	if n := shards("events"); n != awskit.LocalStreamShards {
		t.Errorf("the existing stream has %d shards after EnsureStream with 1, want its %d kept", n, awskit.LocalStreamShards)
	}
}
