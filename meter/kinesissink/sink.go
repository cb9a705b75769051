package kinesissink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/tenancykit/tenancy/meter"
)

// PutRecordsAPI is the part of the Kinesis client the sink uses;
// *kinesis.Client implements it, and tests swap in their own.
type PutRecordsAPI interface {
	PutRecords(ctx context.Context, params *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

var _ PutRecordsAPI = (*kinesis.Client)(nil)

// Limits of one PutRecords call. Kinesis counts a record's size as its data
// plus its partition key. These are the limits every stream accepts; streams
// configured for larger records accept more, but metering records are a few
// hundred bytes.
const (
	MaxBatchRecords = 500
	MaxBatchBytes   = 5 << 20
	MaxRecordBytes  = 1 << 20
)

// UnattributedKey is the partition key of records of usage that had no
// tenant ([meter.Record.Unattributed]).
const UnattributedKey = "unattributed"

// maxKeyChars is Kinesis' limit on a partition key, in Unicode characters.
const maxKeyChars = 256

var (
	// ErrRecordTooLarge is wrapped by the error reported for a record whose
	// JSON and partition key exceed [MaxRecordBytes]. Such a record is
	// never sent (Kinesis would refuse the whole call holding it) and is
	// reported rejected.
	ErrRecordTooLarge = errors.New("kinesissink: record larger than Kinesis accepts")
	// ErrRecordRejected is wrapped by the error reported for a record that
	// Kinesis refused in a PutRecords answer with an error code that no
	// retry cures (any but those of [ErrRefused]). It is not sent again,
	// and is reported rejected.
	ErrRecordRejected = errors.New("kinesissink: record rejected by Kinesis")
	// ErrRefused is wrapped by the error reported for records Kinesis
	// refused in a PutRecords answer for a reason that passes (a throttled
	// shard, an internal failure, the state of the stream's KMS key) after
	// every attempt.
	ErrRefused = errors.New("kinesissink: records refused by Kinesis")
)

// Sink writes [meter.Record]s to a Kinesis data stream, one Kinesis record
// per meter record: the record as JSON for the data, the tenant ID for the
// partition key. It is a [meter.Sink]; a Sink is safe for concurrent use.
type Sink struct {
	client PutRecordsAPI
	stream string // may be empty when arn is set
	arn    string
	cfg    config
}

var _ meter.Sink = (*Sink)(nil)

var streamName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// New returns a sink writing to the stream named stream through client,
// usually a *kinesis.Client. Retries within a Write are set by
// [WithAttempts] and [WithBackoff]; [WithStreamARN] names the stream by its
// ARN.
func New(client PutRecordsAPI, stream string, opts ...Option) (*Sink, error) {
	if client == nil {
		return nil, errors.New("kinesissink: New needs a Kinesis client")
	}
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, err
	}
	switch {
	case stream == "" && c.streamARN == "":
		return nil, errors.New("kinesissink: New needs a stream name, or its ARN (WithStreamARN)")
	case stream != "" && !streamName.MatchString(stream):
		return nil, fmt.Errorf("kinesissink: %q is not a Kinesis stream name (1 to 128 of a-z, A-Z, 0-9, _ . -)", stream)
	}
	if c.streamARN != "" {
		a, err := arn.Parse(c.streamARN)
		name, isStream := strings.CutPrefix(a.Resource, "stream/")
		switch {
		case err != nil || a.Service != "kinesis" || !isStream || !streamName.MatchString(name):
			return nil, fmt.Errorf("kinesissink: WithStreamARN: %q is not the ARN of a Kinesis stream", c.streamARN)
		case stream != "" && stream != name:
			return nil, fmt.Errorf("kinesissink: the stream %q is not the one of WithStreamARN (%q)", stream, name)
		}
	}
	return &Sink{client: client, stream: stream, arn: c.streamARN, cfg: c}, nil
}

// entry is a record ready to send.
type entry struct {
	index int // in the slice given to Write
	id    string
	data  []byte
	key   string
}

func (e *entry) size() int { return len(e.data) + len(e.key) }

// rejection is a record never to be sent again, and why: in short for the
// dead-letter file, and as an error naming the record.
type rejection struct {
	index  int
	reason string
	err    error
}

// Write implements [meter.Sink]. It sends the records in PutRecords calls of
// at most [MaxBatchRecords] records and [MaxBatchBytes], and sends again,
// after a short backoff, only the records that failed for a reason that
// passes: those Kinesis refused in its answer as throttled or for an
// internal failure, and those of calls that failed as a whole. Records
// still undelivered after the last attempt are reported in a
// [*meter.DeliveryError], or, when no record was delivered, in the error
// returned. After a call that fails as a whole (no answer within
// [WithTimeout], a throttled stream), the calls left wait for the next
// attempt. A call that fails for a reason retrying cannot cure (no such
// stream, access denied) ends the retries at once, and so does the end of
// ctx.
//
// A record Kinesis can never take holds up no other: one too large is
// never sent, and one Kinesis refused with an error code that names the
// record itself is not sent again. Both are reported in the
// DeliveryError's Rejected, with their reason, for the Recorder's
// dead-letter file; its error wraps [ErrRecordTooLarge] or
// [ErrRecordRejected].
func (s *Sink) Write(ctx context.Context, records []meter.Record) error {
	if len(records) == 0 {
		return nil
	}
	var rejected []rejection
	pending := make([]entry, 0, len(records))
	for i := range records {
		e, rej := encode(i, &records[i])
		if rej != nil {
			rejected = append(rejected, *rej)
			continue
		}
		pending = append(pending, e)
	}

	var lastErr error
	for attempt := 0; len(pending) > 0 && attempt < s.cfg.attempts; attempt++ {
		if attempt > 0 {
			if err := s.cfg.sleep(ctx, s.backoff(attempt)); err != nil {
				lastErr = errors.Join(lastErr, fmt.Errorf("kinesissink: retry abandoned: %w", err))
				break
			}
		}
		var (
			again []entry
			wait  bool // the calls left wait for the next attempt
			stop  bool // and there is none
		)
		for _, batch := range batches(pending) {
			if wait {
				again = append(again, batch...)
				continue
			}
			f, rej, whole, err := s.put(ctx, batch)
			again = append(again, f...)
			rejected = append(rejected, rej...)
			if err != nil {
				lastErr = err
			}
			if whole {
				// Kinesis is down, unreachable or throttling the
				// stream: the other calls would fare no better now.
				wait, stop = true, !retryable(ctx, err)
			}
		}
		pending = again
		if stop {
			break
		}
	}
	return report(ctx, len(records), pending, rejected, lastErr)
}

// report returns the error of a Write of n records that left pending
// undelivered, after lastErr, and rejected: nil when there are neither; a
// plain error when every record is pending, as the meter.Sink contract
// asks when none was delivered and all may be later; else a
// *meter.DeliveryError.
func report(ctx context.Context, n int, pending []entry, rejected []rejection, lastErr error) error {
	if len(pending) == 0 && len(rejected) == 0 {
		return nil
	}
	var (
		de   = &meter.DeliveryError{}
		errs []error
	)
	for _, r := range rejected {
		de.Rejected = append(de.Rejected, meter.RejectedRecord{Index: r.index, Reason: r.reason})
		errs = append(errs, r.err)
	}
	if len(pending) > 0 {
		for _, e := range pending {
			de.Failed = append(de.Failed, e.index)
		}
		errs = append(errs, lastErr)
		if ctx.Err() != nil && !errors.Is(lastErr, ctx.Err()) {
			errs = append(errs, fmt.Errorf("kinesissink: retry abandoned: %w", ctx.Err()))
		}
	}
	de.Err = errors.Join(errs...)
	if len(de.Failed) == n {
		return de.Err
	}
	slices.Sort(de.Failed)
	slices.SortFunc(de.Rejected, func(a, b meter.RejectedRecord) int { return a.Index - b.Index })
	return de
}

// put sends one batch. It returns the entries to send again, those Kinesis
// rejected for good, whether the call failed as a whole, and why the batch
// was not delivered whole.
func (s *Sink) put(ctx context.Context, batch []entry) (again []entry, rejected []rejection, whole bool, err error) {
	in := &kinesis.PutRecordsInput{Records: make([]types.PutRecordsRequestEntry, len(batch))}
	if s.stream != "" {
		in.StreamName = aws.String(s.stream)
	}
	if s.arn != "" {
		in.StreamARN = aws.String(s.arn)
	}
	for i := range batch {
		in.Records[i] = types.PutRecordsRequestEntry{Data: batch[i].data, PartitionKey: aws.String(batch[i].key)}
	}
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	out, err := s.client.PutRecords(callCtx, in)
	if err != nil {
		if ctx.Err() == nil && callCtx.Err() != nil {
			return batch, nil, true, fmt.Errorf("kinesissink: PutRecords: no answer within %v (WithTimeout): %w", s.cfg.timeout, err)
		}
		return batch, nil, true, fmt.Errorf("kinesissink: PutRecords: %w", err)
	}
	if aws.ToInt32(out.FailedRecordCount) == 0 && !anyFailed(out.Records) {
		return nil, nil, false, nil
	}
	if len(out.Records) != len(batch) {
		// Kinesis answers one entry per record, in order; without that
		// there is no telling which failed.
		return batch, nil, false, fmt.Errorf("%w: %d of %d records failed, and the answer has %d entries for them",
			ErrRefused, aws.ToInt32(out.FailedRecordCount), len(batch), len(out.Records))
	}
	var code, text string // of the first record to send again
	for i, r := range out.Records {
		c := aws.ToString(r.ErrorCode)
		switch {
		case c == "":
		case refusedForNow(c):
			again = append(again, batch[i])
			if code == "" {
				code, text = c, aws.ToString(r.ErrorMessage)
			}
		default:
			msg := aws.ToString(r.ErrorMessage)
			rejected = append(rejected, rejection{
				index:  batch[i].index,
				reason: fmt.Sprintf("Kinesis refused it: %s: %s", c, msg),
				err:    fmt.Errorf("%w: record %s: %s: %s", ErrRecordRejected, batch[i].id, c, msg),
			})
		}
	}
	if len(again) == 0 {
		return nil, rejected, false, nil
	}
	return again, rejected, false, fmt.Errorf("%w: %d of %d records, first %s: %s", ErrRefused, len(again), len(batch), code, text)
}

// refusedForNow reports whether the error code of a record in a PutRecords
// answer is one that passes: a throttled shard, an internal failure, or a
// state of the stream's KMS key (disabled, not found, access denied), which
// is the stream's and not the record's, and fixing it delivers every
// record. Any other code names a fault of the record.
func refusedForNow(code string) bool {
	switch code {
	case "ProvisionedThroughputExceededException", "InternalFailure", "ThrottlingException", "LimitExceededException":
		return true
	}
	return strings.HasPrefix(code, "KMS")
}

func anyFailed(rs []types.PutRecordsResultEntry) bool {
	for _, r := range rs {
		if aws.ToString(r.ErrorCode) != "" {
			return true
		}
	}
	return false
}

// retryable reports whether another attempt may deliver what err refused:
// throttling and server errors may pass later, a missing stream or a
// refused permission will not.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		// A call's own timeout (WithTimeout) is retried; the end of the
		// Write's context is not.
		return false
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorFault() != smithy.FaultClient {
		return true
	}
	switch ae.ErrorCode() {
	case "ProvisionedThroughputExceededException", "LimitExceededException", "KMSThrottlingException",
		"ResourceInUseException", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException":
		return true
	}
	return false
}

// backoff is the wait before the attempt numbered attempt (1 for the first
// retry): doubling from min to max, less a random part of up to half.
func (s *Sink) backoff(attempt int) time.Duration {
	d := s.cfg.minBackoff
	for i := 1; i < attempt && d < s.cfg.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.maxBackoff)
	return d - rand.N(d/2+1)
}

// batches splits entries into PutRecords calls, in order.
func batches(entries []entry) [][]entry {
	if len(entries) == 0 {
		return nil
	}
	var (
		out   [][]entry
		start int
		bytes int
	)
	for i := range entries {
		n := entries[i].size()
		if i > start && (i-start == MaxBatchRecords || bytes+n > MaxBatchBytes) {
			out = append(out, entries[start:i])
			start, bytes = i, 0
		}
		bytes += n
	}
	return append(out, entries[start:])
}

// encode turns a record into a Kinesis record, or says why Kinesis will
// never take it.
func encode(i int, r *meter.Record) (entry, *rejection) {
	data, err := json.Marshal(r)
	if err != nil {
		return entry{}, &rejection{
			index:  i,
			reason: "not encodable as JSON: " + err.Error(),
			err:    fmt.Errorf("kinesissink: record %s: %w", r.ID, err),
		}
	}
	e := entry{index: i, id: r.ID, data: data, key: PartitionKey(r)}
	if e.size() > MaxRecordBytes {
		return entry{}, &rejection{
			index:  i,
			reason: fmt.Sprintf("%d bytes with its partition key, larger than a Kinesis record can be (%d)", e.size(), MaxRecordBytes),
			err: fmt.Errorf("%w: record %s (tenant %q, meter %q) is %d bytes with its partition key, at most %d",
				ErrRecordTooLarge, r.ID, r.TenantID, r.Meter, e.size(), MaxRecordBytes),
		}
	}
	return e, nil
}

// PartitionKey returns the partition key of r: its tenant ID, so that a
// tenant's records go to one shard in order, or [UnattributedKey]. An ID
// Kinesis would not take as a key (longer than 256 characters, or not
// valid UTF-8; tenant IDs that passed tenant.ValidateID are neither) is
// replaced by "sha256:" and the hex of its hash, which keeps it on one
// shard. The key is always one Kinesis takes.
func PartitionKey(r *meter.Record) string {
	if r.Unattributed || r.TenantID == "" {
		return UnattributedKey
	}
	if !utf8.ValidString(r.TenantID) || utf8.RuneCountInString(r.TenantID) > maxKeyChars {
		sum := sha256.Sum256([]byte(r.TenantID))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return r.TenantID
}
