package redisstore_test

import (
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/throttle/redisstore"
)

// A Redis client must honour context deadlines, or a slow Redis would hold
// every request past the store's timeout: New says so, and how to fix it.
func ExampleNew() {
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer plain.Close()
	_, err := redisstore.New(plain)
	fmt.Println(err)

	bounded := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer bounded.Close()
	_, err = redisstore.New(bounded, redisstore.WithReplicas(3))
	fmt.Println(err)
	// Output:
	// redisstore: the Redis client ignores context deadlines, so a slow Redis would hold every request past WithTimeout: set ContextTimeoutEnabled: true in its options
	// <nil>
}
