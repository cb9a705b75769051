// Package redisclient holds what the module's Redis stores check of the
// client they are given.
package redisclient

import "github.com/redis/go-redis/v9"

// HonoursDeadlines reports whether the client's network waits end with the
// context, for the client types whose options say so: without
// ContextTimeoutEnabled, a paused Redis holds a request for the client's
// read timeout whatever the context's deadline.
func HonoursDeadlines(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}
