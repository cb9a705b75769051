package kinesissink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/meter/kinesissink"
)

// fakeKinesis is a PutRecordsAPI that keeps every call and answers with
// answer, or accepts every record when answer is nil.
type fakeKinesis struct {
	answer func(call int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error)

	mu    sync.Mutex
	calls []*kinesis.PutRecordsInput
}

func (f *fakeKinesis) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	cp := *in
	cp.Records = slices.Clone(in.Records)
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, &cp)
	f.mu.Unlock()
	if f.answer == nil {
		return accept(in), nil
	}
	return f.answer(n, in)
}

func (f *fakeKinesis) Calls() []*kinesis.PutRecordsInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// accept answers that every record was stored.
func accept(in *kinesis.PutRecordsInput) *kinesis.PutRecordsOutput {
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	for i := range in.Records {
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String(strconv.Itoa(i))})
	}
	return out
}

// refuse answers with the error code code returns for each record ("" for
// stored).
func refuse(in *kinesis.PutRecordsInput, code func(i int, r meter.Record) string) *kinesis.PutRecordsOutput {
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	for i, e := range in.Records {
		var r meter.Record
		if err := json.Unmarshal(e.Data, &r); err != nil {
			panic(err)
		}
		if c := code(i, r); c != "" {
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String(c), ErrorMessage: aws.String("refused by the test")})
			*out.FailedRecordCount++
			continue
		}
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String(strconv.Itoa(i))})
	}
	return out
}

// ids returns the record IDs of a call, in order. The ID is the first
// field of the JSON, so only the start of each record is decoded: the
// 5 MiB tests send large ones.
func ids(t *testing.T, in *kinesis.PutRecordsInput) []string {
	t.Helper()
	var out []string
	for _, e := range in.Records {
		dec := json.NewDecoder(bytes.NewReader(e.Data))
		var toks []json.Token
		for range 3 {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, tok)
		}
		if toks[1] != "id" {
			t.Fatalf("record %.40q does not start with its id", e.Data)
		}
		out = append(out, toks[2].(string))
	}
	return out
}

// callBytes is what Kinesis counts against a call's limit.
func callBytes(in *kinesis.PutRecordsInput) int {
	n := 0
	for _, e := range in.Records {
		n += len(e.Data) + len(aws.ToString(e.PartitionKey))
	}
	return n
}

var window = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// records returns n records, of 7 tenants, with IDs "r0000"...
func records(n int) []meter.Record {
	out := make([]meter.Record, n)
	for i := range out {
		out[i] = meter.Record{
			ID:          fmt.Sprintf("r%04d", i),
			TenantID:    fmt.Sprintf("tenant-%d", i%7),
			Tier:        "standard",
			Meter:       "api.calls",
			Value:       float64(i),
			Unit:        meter.UnitCount,
			WindowStart: window,
			WindowEnd:   window.Add(time.Minute),
			Service:     "orders",
		}
	}
	return out
}

func recordIDs(rs []meter.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// sleeps records the waits of a sink and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

func newSink(t *testing.T, client kinesissink.PutRecordsAPI, opts ...kinesissink.Option) *kinesissink.Sink {
	t.Helper()
	s, err := kinesissink.New(client, "metering", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// noSleep is a WithSleep that does not wait.
var noSleep = kinesissink.WithSleep(func(ctx context.Context, _ time.Duration) error { return ctx.Err() })
