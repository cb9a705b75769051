// Package awskit is the AWS plumbing the example services share: the
// SDK's configuration with the defaults a local emulator (dynalite,
// DynamoDB Local, kinesalite) accepts, and a Kinesis stream created at
// start for local development. It exists so that examples/orders, which
// publishes the order events, and examples/fulfillment, which consumes
// them, configure their clients and their stream alike.
package awskit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Local development defaults for an emulator's endpoint (DYNAMODB_ENDPOINT,
// KINESIS_ENDPOINT): the emulators check that a request is signed, not by
// whom.
const (
	LocalRegion    = "us-east-1"
	LocalAccessKey = "local"
	LocalSecretKey = "local"
)

// Streams created at start with an emulator's endpoint.
const (
	// LocalStreamShards is the shard count of a stream of events created
	// at start: more than one, so that the tenants spread over shards as
	// they do in AWS.
	LocalStreamShards = 2
	// StreamWait bounds the wait for a stream created at start to be
	// ACTIVE.
	StreamWait = 30 * time.Second
)

// LoadConfig loads the SDK's configuration as any AWS service does (the
// environment, shared files, a role), and returns it with the HTTP
// transport every call goes through, whose idle connections the caller
// closes at shutdown. With endpoint (an emulator's URL) it defaults the
// region to LocalRegion and the credentials to LocalAccessKey when the
// environment (read through getenv) names none. what names the setting
// that needs AWS, for the errors.
func LoadConfig(ctx context.Context, getenv func(string) string, endpoint, what string) (aws.Config, *http.Transport, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if endpoint != "" {
		if getenv("AWS_REGION") == "" && getenv("AWS_DEFAULT_REGION") == "" {
			opts = append(opts, awsconfig.WithRegion(LocalRegion))
		}
		if getenv("AWS_ACCESS_KEY_ID") == "" && getenv("AWS_PROFILE") == "" {
			opts = append(opts, awsconfig.WithCredentialsProvider(
				credentials.NewStaticCredentialsProvider(LocalAccessKey, LocalSecretKey, "")))
		}
	}
	c, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, nil, fmt.Errorf("AWS configuration for %s: %w", what, err)
	}
	if c.Region == "" {
		return aws.Config{}, nil, fmt.Errorf("%s: no AWS region: set AWS_REGION", what)
	}
	client := &http.Client{
		// As the SDK's own client: a redirect is returned, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if bc, ok := c.HTTPClient.(*awshttp.BuildableClient); ok {
		client.Transport, client.Timeout = bc.GetTransport(), bc.GetTimeout()
	} else {
		client.Transport = awshttp.NewBuildableClient().GetTransport()
	}
	c.HTTPClient = client
	return c, client.Transport.(*http.Transport), nil
}

// streamName is Kinesis's rule for stream names.
var streamName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// CheckStreamName reports whether name is a valid Kinesis stream name.
func CheckStreamName(name string) error {
	if !streamName.MatchString(name) {
		return errors.New("a Kinesis stream name is 1 to 128 letters, digits, '_', '-' or '.'")
	}
	return nil
}

// EnsureStream creates stream with shards shards unless it exists, and
// waits until it is ACTIVE. A stream that exists is kept as it is, with
// its shards; one another process creates at the same time is waited for.
func EnsureStream(ctx context.Context, client *kinesis.Client, stream string, shards int32) error {
	_, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		_, err = client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(shards)})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // another process was first
			return fmt.Errorf("create the stream: %w", err)
		}
	case err != nil:
		return fmt.Errorf("describe the stream: %w", err)
	}
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, StreamWait); err != nil {
		return fmt.Errorf("wait for the stream: %w", err)
	}
	return nil
}
