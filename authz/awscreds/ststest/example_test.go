package ststest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/tenancykit/tenancy/authz/awscreds"
	"github.com/tenancykit/tenancy/authz/awscreds/ststest"
	"github.com/tenancykit/tenancy/tenant"
)

// The fake STS shows what a tenant's AssumeRole carried.
func ExampleNewServer() {
	srv, err := ststest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	creds, err := awscreds.New(srv.Client(), "arn:aws:iam::123456789012:role/orders-tenant")
	if err != nil {
		log.Fatal(err)
	}
	t, _ := tenant.New("acme", tenant.DefaultTiers.MustLookup("premium"))
	if _, err := creds.Retrieve(tenant.NewContext(context.Background(), t)); err != nil {
		log.Fatal(err)
	}
	for _, c := range srv.Calls() {
		fmt.Println(c.RoleSessionName, c.Tags, c.DurationSeconds)
	}
	// Output:
	// tenant-acme map[TenantId:acme] 3600
}
