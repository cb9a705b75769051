package tenancykafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/adapters/tenancykafka"
	"github.com/tenancykit/tenancy/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// tally counts the deliveries of each record, by message ID, per member.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
	by     map[string]int // member → deliveries
}

func (ta *tally) handler(member string, next func(context.Context, *message.Message) error) message.Handler {
	return message.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		ta.mu.Lock()
		ta.counts[m.ID]++
		ta.by[member]++
		ta.mu.Unlock()
		if next != nil {
			return next(ctx, m)
		}
		return nil
	})
}

func (ta *tally) total() int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	n := 0
	for _, c := range ta.counts {
		n += c
	}
	return n
}

// publishMany publishes n records of distinct keys, spread over the
// topic's partitions, and returns their IDs.
func publishMany(t *testing.T, c *kfake.Cluster, n int) map[string]int {
	t.Helper()
	p := newOrdersProducer(t, c)
	ids := map[string]int{}
	partitions := map[string]bool{}
	for i := range n {
		id := publish(t, p, context.Background(), fmt.Sprintf("k%d", i), nil)
		ids[id] = 1
		partitions[id[:len("orders/0")]] = true
	}
	if len(partitions) < 2 {
		t.Fatalf("the records went to %d partition(s), want them spread", len(partitions))
	}
	return ids
}

// TestMemberClosedMidBatch: a member stopped while its handlers run, one
// per partition, with records of its partitions polled and not handed
// over yet, settles what they return, commits it and leaves; the member
// that joined meanwhile takes its partitions over and handles the rest:
// every record once, none lost, none twice.
func TestMemberClosedMidBatch(t *testing.T) {
	const n, partitions = 60, 4
	c := newCluster(t, partitions, "orders", "orders.dead")
	ids := publishMany(t, c, n)
	ta := &tally{counts: map[string]int{}, by: map[string]int{}}
	done := make(chan struct{})
	var doneOnce sync.Once
	check := func() {
		if ta.total() == n {
			doneOnce.Do(func() { close(done) })
		}
	}

	// m1's handlers stop in their tracks from the 10th delivery on.
	blocked, release := make(chan struct{}, n), make(chan struct{})
	m1 := newConsumer(t, c, "orders")
	ctx1, stop1 := context.WithCancel(context.Background())
	ran1 := make(chan error, 1)
	go func() {
		ran1 <- m1.Run(ctx1, ta.handler("m1", func(context.Context, *message.Message) error {
			if ta.total() >= 10 {
				blocked <- struct{}{}
				<-release
			}
			check()
			return nil
		}))
	}()
	<-blocked
	run(t, newConsumer(t, c, "orders"), ta.handler("m2", func(context.Context, *message.Message) error {
		check()
		return nil
	}))
	stop1()
	close(release)
	if err := <-ran1; err != nil {
		t.Errorf("m1's Run = %v, want nil once stopped", err)
	}
	m1.Close()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("%d deliveries within %v, want %d", ta.total(), wait, n)
	}

	ta.mu.Lock()
	defer ta.mu.Unlock()
	if diff := cmp.Diff(ids, ta.counts); diff != "" {
		t.Errorf("deliveries by ID (-want once each +got):\n%s", diff)
	}
	if m1, m2 := ta.by["m1"], ta.by["m2"]; m1 < 10 || m1 >= 10+partitions || m1+m2 != n {
		t.Errorf("m1 handled %d and m2 %d, want m1 10 to %d and m2 the rest of %d", m1, m2, 10+partitions-1, n)
	}
}

// TestUncommittedRecordsDeliveredAgain: a member none of whose commits
// reached the group (as one that crashed before committing) leaves every
// record it handled to the next member, which delivers them all again:
// at least once, none lost.
func TestUncommittedRecordsDeliveredAgain(t *testing.T) {
	const n = 20
	c := newCluster(t, 4, "orders", "orders.dead")
	ids := publishMany(t, c, n)
	var refuse atomic.Bool
	refuse.Store(true)
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !refuse.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		oc := req.(*kmsg.OffsetCommitRequest)
		resp := oc.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.SetVersion(oc.GetVersion())
		for _, rt := range oc.Topics {
			topic := kmsg.NewOffsetCommitResponseTopic()
			topic.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				part := kmsg.NewOffsetCommitResponseTopicPartition()
				part.Partition, part.ErrorCode = rp.Partition, kerr.GroupAuthorizationFailed.Code
				topic.Partitions = append(topic.Partitions, part)
			}
			resp.Topics = append(resp.Topics, topic)
		}
		return resp, nil, true
	})

	first := &tally{counts: map[string]int{}, by: map[string]int{}}
	all := make(chan struct{})
	stop := run(t, newConsumer(t, c, "orders", tenancykafka.WithLogger(slog.New(slog.DiscardHandler))),
		first.handler("m1", func(context.Context, *message.Message) error {
			if first.total() == n {
				close(all)
			}
			return nil
		}))
	select {
	case <-all:
	case <-time.After(wait):
		t.Fatalf("m1: %d deliveries within %v, want %d", first.total(), wait, n)
	}
	stop()
	if got := committed(t, c, "orders"); len(got) != 0 {
		t.Fatalf("committed %v, want nothing", got)
	}
	refuse.Store(false)

	again := &tally{counts: map[string]int{}, by: map[string]int{}}
	all = make(chan struct{})
	stop = run(t, newConsumer(t, c, "orders"), again.handler("m2", func(context.Context, *message.Message) error {
		if again.total() == n {
			close(all)
		}
		return nil
	}))
	select {
	case <-all:
	case <-time.After(wait):
		t.Fatalf("m2: %d deliveries within %v, want %d", again.total(), wait, n)
	}
	stop()
	for _, ta := range []*tally{first, again} {
		if diff := cmp.Diff(ids, ta.counts); diff != "" {
			t.Errorf("%v: deliveries by ID (-want once each +got):\n%s", ta.by, diff)
		}
	}
	sum := int64(0)
	got := committed(t, c, "orders")
	for _, o := range got {
		sum += o
	}
	if sum != n {
		t.Errorf("committed %v, want the ends of the partitions, %d records in all", got, n)
	}
}
