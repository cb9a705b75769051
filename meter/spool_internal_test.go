package meter

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzSpoolLine feeds hostile lines to the spool's reader: it never
// panics, and a line it accepts as a record is one it writes back the
// same.
func FuzzSpoolLine(f *testing.F) {
	f.Add([]byte(`{"v":1,"record":{"id":"0123456789abcdef0123456789abcdef","tenant_id":"acme","meter":"api.calls","value":1,"unit":"Count","window_start":"2026-03-14T12:00:00Z","window_end":"2026-03-14T12:01:00Z","service":"orders","dimensions":{"route":"/a"}}}`))
	f.Add([]byte(`{"id":"0123456789abcdef0123456789abcdef","tenant_id":"acme","meter":"api.calls","value":1}`))
	f.Add([]byte(`{"v":1,"delivered_to":1234}`))
	f.Add([]byte(`{"v":2,"amount":5}`))
	f.Add([]byte(`{"v":1,"record":null,"delivered_to":null}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		l, _, err := parseSpoolLine(line)
		if err != nil || l.Record == nil {
			return
		}
		buf, _ := appendSpoolRecords(nil, []Record{*l.Record}, nil, 0)
		again, legacy, err := parseSpoolLine(bytes.TrimSuffix(buf, []byte("\n")))
		if err != nil || legacy {
			t.Fatalf("a record read from %q, written as %q, reads back with %v", line, buf, err)
		}
		if diff := cmp.Diff(l.Record, again.Record, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("written and read back (-read +again):\n%s", diff)
		}
	})
}

func TestReadLineOfAnyLength(t *testing.T) {
	long := strings.Repeat("x", 5<<20)
	br := bufio.NewReaderSize(strings.NewReader("a\n"+long+"\n\nend"), 16)
	var got []string
	var ended []bool
	var buf []byte
	for {
		line, whole, err := readLine(br, buf)
		if err != nil {
			break
		}
		got = append(got, string(line))
		ended = append(ended, whole)
		buf = line
	}
	if diff := cmp.Diff([]string{"a", long, "", "end"}, got); diff != "" {
		t.Errorf("lines (-want +got):\n%.200s", diff)
	}
	if diff := cmp.Diff([]bool{true, true, true, false}, ended); diff != "" {
		t.Errorf("ended with a newline (-want +got):\n%s", diff)
	}
}
