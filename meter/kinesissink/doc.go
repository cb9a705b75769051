// Package kinesissink delivers metering records to an Amazon Kinesis data
// stream, for a billing pipeline to read: a [meter.Sink] on aws-sdk-go-v2.
//
// Each [meter.Record] becomes one Kinesis record whose data is the record
// as JSON (the fields of meter.Record: id, tenant_id, meter, value, unit,
// window_start, window_end, service, dimensions...) and whose partition
// key is the tenant ID, or [UnattributedKey] for usage without a tenant: a
// tenant's records land on one shard, in the order they were written.
// Consumers deduplicate on the record's id, which stays the same when a
// record is sent again.
//
// A Write sends at most [MaxBatchRecords] records and [MaxBatchBytes] per
// PutRecords call. Kinesis may accept some records of a call and refuse
// others (a shard over its throughput); only the refused ones are sent
// again, a few times within the Write with a short backoff ([WithAttempts],
// [WithBackoff]). What is still undelivered is reported to the
// [meter.Recorder] as a [*meter.DeliveryError] naming those records, and
// the Recorder keeps them and tries again later with its own, longer
// backoff. No record is dropped, and only records not known to be
// delivered are sent again; the id lets consumers drop the rare duplicate
// (a call whose answer was lost).
//
// A Write while Kinesis does not answer (down, unreachable, a hung host)
// fails after at most [WithAttempts] calls that each time out
// ([WithTimeout], [DefaultTimeout]): once a call fails as a whole, the
// calls left wait for the next attempt instead of timing out in turn. The
// records stay with the Recorder for later; a call whose answer was lost
// may have been stored, and is the duplicate consumers drop by id.
//
// A record Kinesis can never take holds up no other: one larger than
// [MaxRecordBytes] is never sent (Kinesis would refuse the whole call), and
// one refused with an error code that names the record, not the stream's
// state, is not sent again. Each is reported in the DeliveryError's
// Rejected with its reason, and the Recorder writes it to its dead-letter
// file (meter.WithDeadLetter) instead of sending it again.
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	...
//	sink, err := kinesissink.New(kinesis.NewFromConfig(cfg), "metering")
//	...
//	rec, err := meter.New("orders", sink, meter.WithMeters(meter.HTTPMeters()...))
//
// # Permissions
//
// The sink calls PutRecords only. The credentials need
//
//	{
//	  "Effect": "Allow",
//	  "Action": "kinesis:PutRecords",
//	  "Resource": "arn:aws:kinesis:REGION:ACCOUNT:stream/STREAM"
//	}
//
// and, for a stream encrypted with a customer-managed KMS key,
// kms:GenerateDataKey on that key.
package kinesissink
