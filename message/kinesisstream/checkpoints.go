package kinesisstream

import (
	"context"
	"sync"
)

// ShardEnd is the checkpoint of a shard a reshard closed and whose every
// record was settled: a Consumer reads it no more, and starts on its
// children.
const ShardEnd = "SHARD_END"

// Checkpoints keeps, per shard, the sequence number of the record up to
// which a Consumer settled every record: where it, or the Consumer that
// takes over, goes on reading. One Checkpoints serves one stream and one
// consuming application: give each pair its own (a table of its own, a
// key prefix).
type Checkpoints interface {
	// Checkpoint returns the checkpoint of shard shardID, or "" when it
	// has none (the shard is read from its oldest record).
	Checkpoint(ctx context.Context, shardID string) (string, error)
	// SetCheckpoint stores the checkpoint of shard shardID: a sequence
	// number, or ShardEnd.
	SetCheckpoint(ctx context.Context, shardID, sequence string) error
}

// MemoryCheckpoints keeps checkpoints in memory: they last as long as the
// process, so a Consumer that starts again reads its shards from their
// oldest records (every record again: at least once, many times over).
// For tests, and for streams whose records are cheap to handle again.
// The zero MemoryCheckpoints is ready to use; it is safe for concurrent
// use.
type MemoryCheckpoints struct {
	mu sync.Mutex
	m  map[string]string
}

var _ Checkpoints = (*MemoryCheckpoints)(nil)

// Checkpoint returns the checkpoint of shard shardID, or "".
func (c *MemoryCheckpoints) Checkpoint(_ context.Context, shardID string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[shardID], nil
}

// SetCheckpoint stores the checkpoint of shard shardID.
func (c *MemoryCheckpoints) SetCheckpoint(_ context.Context, shardID, sequence string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]string{}
	}
	c.m[shardID] = sequence
	return nil
}
