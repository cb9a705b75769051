package kit

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wholeLines holds the start of a line until its end comes, and a report
// of dropped lines until the line in progress has ended: the two ways an
// AsyncWriter would otherwise cut into a line of a shared stdout.
func TestWholeLines(t *testing.T) {
	var out strings.Builder
	l := &wholeLines{w: &out, stream: "log"}
	var writes []string
	step := func(what string, f func()) {
		before := out.Len()
		f()
		writes = append(writes, what+": "+out.String()[before:])
	}
	step("two lines and a half", func() { l.Write([]byte("{\"a\":1}\n{\"b\":2}\n{\"c\":")) })
	step("a report mid-line", func() {
		if p := l.dropped(3); p != nil {
			t.Errorf("dropped returned %q, want nothing for the AsyncWriter to write", p)
		}
	})
	step("more of the line", func() { l.Write([]byte("3")) })
	step("its end and another half", func() { l.Write([]byte("}\n{\"d\":")) })
	step("the rest", func() { l.Write([]byte("4}\n")) })
	step("a report between lines", func() { l.dropped(1) })
	step("a line without its newline", func() { l.Write([]byte(`{"e":5}`)) })
	step("flush", l.flush)

	const report = `{"level":"WARN","msg":"logging: log lines dropped while the output was not keeping up","dropped":%d,"stream":"log"}` + "\n"
	want := []string{
		"two lines and a half: {\"a\":1}\n{\"b\":2}\n",
		"a report mid-line: ",
		"more of the line: ",
		"its end and another half: {\"c\":3}\n" + strings.Replace(report, "%d", "3", 1),
		"the rest: {\"d\":4}\n",
		"a report between lines: " + strings.Replace(report, "%d", "1", 1),
		"a line without its newline: ",
		"flush: {\"e\":5}\n",
	}
	if diff := cmp.Diff(want, writes); diff != "" {
		t.Errorf("what reached the output at each step (-want +got):\n%s", diff)
	}
}
