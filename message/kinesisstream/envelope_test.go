package kinesisstream_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/message/kinesisstream"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  []byte
		attrs map[string]string
	}{
		{"attributes", []byte(`{"order":1}`), map[string]string{"tenancy-stamp": "eyJ.x.y", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "empty": ""}},
		{"none", []byte("body"), nil},
		{"empty body", nil, map[string]string{"k": "v"}},
		{"binary", []byte{0, 't', 'n', 'y', 1, 0xff}, map[string]string{"é": string(make([]byte, 300))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := kinesisstream.Encode(tc.body, tc.attrs)
			if err != nil {
				t.Fatal(err)
			}
			body, attrs, err := kinesisstream.Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !bytes.Equal(body, tc.body) {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if diff := cmp.Diff(tc.attrs, attrs); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
			again, _ := kinesisstream.Encode(tc.body, tc.attrs)
			if !bytes.Equal(again, data) {
				t.Error("the same message encoded twice differs")
			}
		})
	}
	if _, err := kinesisstream.Encode(nil, map[string]string{"": "v"}); err == nil {
		t.Error("Encode of an attribute without a name: no error")
	}
}

// TestDecodeForeignData: data that is no envelope, or a broken one, is
// the body whole, without attributes, and an error that says which.
func TestDecodeForeignData(t *testing.T) {
	valid, _ := kinesisstream.Encode([]byte("b"), map[string]string{"k": "v"})
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"JSON", []byte(`{"tenant":"acme"}`), kinesisstream.ErrNotEnvelope},
		{"empty", nil, kinesisstream.ErrNotEnvelope},
		{"magic only", []byte{0, 't', 'n', 'y'}, kinesisstream.ErrNotEnvelope},
		{"another version", append([]byte{0, 't', 'n', 'y', 2}, valid[5:]...), kinesisstream.ErrMalformed},
		{"cut short", valid[:9], kinesisstream.ErrMalformed},
		{"count past the end", []byte{0, 't', 'n', 'y', 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, kinesisstream.ErrMalformed},
		{"bad varint", []byte{0, 't', 'n', 'y', 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kinesisstream.ErrMalformed},
		{"attribute twice", []byte{0, 't', 'n', 'y', 1, 2, 1, 'k', 1, 'a', 1, 'k', 1, 'b'}, kinesisstream.ErrMalformed},
		{"empty name", []byte{0, 't', 'n', 'y', 1, 1, 0, 1, 'a'}, kinesisstream.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, attrs, err := kinesisstream.Decode(tc.data)
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if !bytes.Equal(body, tc.data) || attrs != nil {
				t.Errorf("got %q %v, want the data whole and no attributes", body, attrs)
			}
			m := kinesisstream.NewMessage("orders", "shardId-000000000000", "49", tc.data)
			if m.Attributes != nil || !bytes.Equal(m.Body, tc.data) || m.ID != "shardId-000000000000/49" || m.Source != "orders" {
				t.Errorf("NewMessage = %+v", m)
			}
		})
	}
}

// FuzzDecode: Decode never panics; what it decodes encodes back to data
// it decodes the same; what it refuses is the data whole.
func FuzzDecode(f *testing.F) {
	valid, _ := kinesisstream.Encode([]byte("body"), map[string]string{"tenancy-stamp": "x", "traceparent": "y"})
	f.Add(valid)
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte{0, 't', 'n', 'y', 1, 0})
	f.Add([]byte{0, 't', 'n', 'y', 1, 2, 1, 'k', 1, 'a', 1, 'k', 1, 'b'})
	f.Fuzz(func(t *testing.T, data []byte) {
		body, attrs, err := kinesisstream.Decode(data)
		if err != nil {
			if !bytes.Equal(body, data) || attrs != nil {
				t.Fatalf("refused data %q decoded to %q %v", data, body, attrs)
			}
			return
		}
		again, err := kinesisstream.Encode(body, attrs)
		if err != nil {
			t.Fatalf("Encode of what Decode returned: %v", err)
		}
		body2, attrs2, err := kinesisstream.Decode(again)
		if err != nil || !bytes.Equal(body, body2) || !cmp.Equal(attrs, attrs2) {
			t.Fatalf("round trip of %q: %q %v, then %q %v (%v)", data, body, attrs, body2, attrs2, err)
		}
	})
}
