package ststest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/authz/awscreds/ststest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The real SDK client reads what the server writes, and the server records
// what the client sent.
func TestAssumeRoleRoundTrip(t *testing.T) {
	srv := ststest.Start(t)
	srv.SetLifetime(30 * time.Minute)
	out, err := srv.Client().AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn:           aws.String("arn:aws:iam::123456789012:role/tenant"),
		RoleSessionName:   aws.String("tenant-acme"),
		DurationSeconds:   aws.Int32(1800),
		Policy:            aws.String(`{"Version":"2012-10-17"}`),
		Tags:              []types.Tag{{Key: aws.String("TenantId"), Value: aws.String("acme")}},
		TransitiveTagKeys: []string{"TenantId"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Credentials.AccessKeyId) == "" || time.Until(*out.Credentials.Expiration) < 29*time.Minute {
		t.Fatalf("credentials %+v", out.Credentials)
	}
	want := []ststest.Call{{
		RoleARN: "arn:aws:iam::123456789012:role/tenant", RoleSessionName: "tenant-acme", DurationSeconds: 1800,
		Policy: `{"Version":"2012-10-17"}`, Tags: map[string]string{"TenantId": "acme"}, TransitiveTags: []string{"TenantId"},
	}}
	if diff := cmp.Diff(want, srv.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if n := srv.CallsFor("TenantId", "acme"); n != 1 {
		t.Errorf("CallsFor = %d", n)
	}
}

func TestInjectedFailure(t *testing.T) {
	srv := ststest.Start(t)
	srv.Fail("globex", "RegionDisabledException")
	call := func(id string) error {
		_, err := srv.Client().AssumeRole(context.Background(), &sts.AssumeRoleInput{
			RoleArn:         aws.String("arn:aws:iam::123456789012:role/tenant"),
			RoleSessionName: aws.String("tenant-" + id),
			Tags:            []types.Tag{{Key: aws.String("TenantId"), Value: aws.String(id)}},
		})
		return err
	}
	var ae smithy.APIError
	if err := call("globex"); !errors.As(err, &ae) || ae.ErrorCode() != "RegionDisabledException" {
		t.Fatalf("globex: %v, want the injected RegionDisabledException", err)
	}
	if err := call("acme"); err != nil {
		t.Fatalf("acme is not failed: %v", err)
	}
	srv.Fail("globex", "")
	if err := call("globex"); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
}
