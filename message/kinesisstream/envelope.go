package kinesisstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/tenancykit/tenancy/message"
)

// The envelope: a Kinesis record has data and a partition key, and no
// attributes, so a Publisher writes the attributes and the body into the
// data:
//
//	magic    4 bytes  0x00 't' 'n' 'y'
//	version  1 byte   1
//	count    uvarint  number of attributes
//	count times: uvarint length, name; uvarint length, value
//	body     the rest of the data
//
// The leading zero byte keeps text and JSON records, which never start with
// one, from being taken for an envelope.
var magic = [4]byte{0x00, 't', 'n', 'y'}

// envelopeVersion is the version Encode writes and Decode reads.
const envelopeVersion = 1

// MaxRecordBytes is the most a Kinesis record holds: its data and its
// partition key together.
const MaxRecordBytes = 1 << 20

// DeadLetterHeadroom is what a Publisher leaves free under
// [MaxRecordBytes] in every record it writes, so that the record, with the
// attributes a dead letter adds, still fits in one record of the
// dead-letter stream.
const DeadLetterHeadroom = 1 << 10

var (
	// ErrNotEnvelope is returned by [Decode] for data that does not start
	// as an envelope: a record another producer wrote.
	ErrNotEnvelope = errors.New("kinesisstream: record data is no envelope")
	// ErrMalformed is wrapped by the error [Decode] returns for data that
	// starts as an envelope and is not a valid one: a version it does not
	// know, a length past the end, an attribute twice, a name that is not
	// UTF-8.
	ErrMalformed = errors.New("kinesisstream: malformed envelope")
	// ErrTooLarge is wrapped by the error Publish returns for a message
	// whose record would be larger than Kinesis takes, less
	// [DeadLetterHeadroom].
	ErrTooLarge = errors.New("kinesisstream: message larger than a Kinesis record")
)

// Encode returns the record data that carries body and attrs: the
// envelope that [Decode] reads. The attributes are written in the order of
// their names, so the same message always has the same data. An attribute
// name must be non-empty UTF-8.
func Encode(body []byte, attrs map[string]string) ([]byte, error) {
	names := slices.Sorted(maps.Keys(attrs))
	n := len(magic) + 1 + binary.MaxVarintLen64 + len(body)
	for _, k := range names {
		if k == "" || !utf8.ValidString(k) {
			return nil, fmt.Errorf("kinesisstream: attribute name %q: must be non-empty UTF-8", k)
		}
		n += 2*binary.MaxVarintLen64 + len(k) + len(attrs[k])
	}
	out := make([]byte, 0, n)
	out = append(out, magic[:]...)
	out = append(out, envelopeVersion)
	out = binary.AppendUvarint(out, uint64(len(names)))
	for _, k := range names {
		out = binary.AppendUvarint(out, uint64(len(k)))
		out = append(out, k...)
		v := attrs[k]
		out = binary.AppendUvarint(out, uint64(len(v)))
		out = append(out, v...)
	}
	return append(out, body...), nil
}

// Decode reads record data that [Encode] wrote: the body and the
// attributes (nil for none). For data that is not an envelope it returns
// the data whole as the body, no attributes and [ErrNotEnvelope]; for a
// malformed envelope, the data whole, no attributes and an error wrapping
// [ErrMalformed]. It never panics, whatever the data.
func Decode(data []byte) (body []byte, attrs map[string]string, err error) {
	if len(data) < len(magic)+1 || [4]byte(data[:4]) != magic {
		return data, nil, ErrNotEnvelope
	}
	if v := data[len(magic)]; v != envelopeVersion {
		return data, nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, v, envelopeVersion)
	}
	rest := data[len(magic)+1:]
	count, rest, err := uvarint(rest)
	if err != nil {
		return data, nil, err
	}
	// Each attribute takes two bytes at least: no count past what fits.
	if count > uint64(len(rest))/2 {
		return data, nil, fmt.Errorf("%w: %d attributes in %d bytes", ErrMalformed, count, len(rest))
	}
	if count > 0 {
		attrs = make(map[string]string, count)
	}
	for range count {
		var k, v []byte
		if k, rest, err = field(rest); err != nil {
			return data, nil, err
		}
		if v, rest, err = field(rest); err != nil {
			return data, nil, err
		}
		name := string(k)
		if name == "" || !utf8.ValidString(name) {
			return data, nil, fmt.Errorf("%w: attribute name %q", ErrMalformed, name)
		}
		if _, dup := attrs[name]; dup {
			return data, nil, fmt.Errorf("%w: attribute %q twice", ErrMalformed, name)
		}
		attrs[name] = string(v)
	}
	return rest, attrs, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	n, size := binary.Uvarint(b)
	if size <= 0 {
		return 0, nil, fmt.Errorf("%w: bad length", ErrMalformed)
	}
	return n, b[size:], nil
}

// field reads a length and as many bytes.
func field(b []byte) (f, rest []byte, err error) {
	n, rest, err := uvarint(b)
	if err != nil {
		return nil, nil, err
	}
	if n > uint64(len(rest)) {
		return nil, nil, fmt.Errorf("%w: a length of %d with %d bytes left", ErrMalformed, n, len(rest))
	}
	return rest[:n], rest[n:], nil
}

// MessageID returns the ID of the message of the record of shard shardID
// with sequence number sequence: shardID + "/" + sequence, the same on
// every delivery, in a Consumer and in a Lambda function alike. Kinesis
// gives sequence numbers; no producer chooses one.
func MessageID(shardID, sequence string) string { return shardID + "/" + sequence }

// NewMessage returns the message of a record of stream, read from shard
// shardID: its ID ([MessageID]), its body and attributes ([Decode]), and
// Source, the stream's name. Data that is no valid envelope becomes a
// message of the data without attributes, which a trust mode that reads
// them (stamp.Trusted) refuses. Deliveries is left 0, for the caller to
// set.
func NewMessage(stream, shardID, sequence string, data []byte) *message.Message {
	body, attrs, _ := Decode(data)
	return &message.Message{ID: MessageID(shardID, sequence), Body: body, Attributes: attrs, Source: stream}
}
