package meter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenancykit/tenancy/meter"
)

// disk is a disk of a fixed number of bytes, shared by its files. A write
// past its end does what one on a real disk does: the part that fits is
// written, and the call fails with ENOSPC.
type disk struct {
	mu   sync.Mutex
	free int
	cuts int // writes that wrote part of what they were given
}

// Free makes n more bytes free, as deleting a filler file does.
func (d *disk) Free(n int) {
	d.mu.Lock()
	d.free += n
	d.mu.Unlock()
}

// Cuts returns how many writes were cut short.
func (d *disk) Cuts() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cuts
}

// diskFile is a file on a disk, with the Seek and Truncate of an *os.File.
type diskFile struct {
	disk *disk
	mu   sync.Mutex
	data []byte
	off  int64
}

func (f *diskFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disk.mu.Lock()
	defer f.disk.mu.Unlock()
	grow := max(int(f.off)+len(p)-len(f.data), 0)
	n := len(p)
	if grow > f.disk.free {
		n -= grow - f.disk.free
		grow = f.disk.free
	}
	if end := int(f.off) + n; end > len(f.data) {
		f.data = append(f.data, make([]byte, end-len(f.data))...)
	}
	copy(f.data[f.off:], p[:n])
	f.off += int64(n)
	f.disk.free -= grow
	if n < len(p) {
		if n > 0 {
			f.disk.cuts++
		}
		return n, syscall.ENOSPC
	}
	return n, nil
}

func (f *diskFile) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += int64(len(f.data))
	}
	if offset < 0 {
		return 0, syscall.EINVAL
	}
	f.off = offset
	return offset, nil
}

func (f *diskFile) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if size < 0 || size > int64(len(f.data)) {
		return syscall.EINVAL
	}
	f.disk.Free(len(f.data) - int(size))
	f.data = f.data[:size]
	return nil
}

func (f *diskFile) Bytes() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.data)
}

// pipe is a diskFile seen through Write only, like a pipe to a process
// that stores what it reads on that disk: a cut line cannot be taken back.
type pipe struct{ f *diskFile }

func (p pipe) Write(b []byte) (int, error) { return p.f.Write(b) }

// meterThroughFullDisk runs a Recorder into sink over 12 windows of 20
// tenants on two meters: the disk has room for the first window, then
// fill takes the rest (the sink's file keeps the free part of its last
// block), then after 6 windows free gives room again. afterFirstFailure
// runs after the first delivery that failed. It returns the totals added,
// by key, after a Shutdown that delivered everything.
func meterThroughFullDisk(t *testing.T, sink meter.Sink, fill, free, afterFirstFailure func()) map[string]float64 {
	t.Helper()
	clk := newClock(start)
	rec := newRecorder(t, clk, sink,
		meter.WithMeters(
			meter.Meter{Name: "api.calls", Unit: meter.UnitCount, Dimensions: []string{"route"}},
			meter.Meter{Name: "storage.bytes", Unit: meter.UnitBytes}),
		// Batches end mid-window, so that some deliveries fail part way.
		meter.WithBatchSize(7))
	want := map[string]float64{}
	failures := 0
	for w := range 12 {
		for i := range 20 {
			id := fmt.Sprintf("tenant-%02d", i)
			ctx := tenantCtx(t, id)
			v := float64(w*100 + i + 1)
			rec.Add(ctx, "api.calls", v, "GET /orders/{id}")
			rec.Add(ctx, "storage.bytes", 1000*v)
			want[id+"|api.calls|route=GET /orders/{id}"] += v
			want[id+"|storage.bytes"] += 1000 * v
		}
		clk.Advance(time.Minute)
		err := rec.Flush(context.Background())
		switch {
		case w == 0 && err != nil:
			t.Fatalf("window 0, with room on the disk: %v", err)
		case w == 0:
			fill()
		case w < 6 && err != nil:
			if failures++; failures == 1 {
				afterFirstFailure()
			}
		case w == 6:
			free()
		case w > 6 && err != nil:
			t.Fatalf("window %d, with room on the disk again: %v", w, err)
		}
	}
	if failures == 0 {
		t.Fatal("no delivery failed: the disk never filled up")
	}
	if err := rec.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	return want
}

// lineSink is a sink of JSON lines under test on a full disk.
type lineSink struct {
	// onWriter returns the sink writing to w.
	onWriter func(t *testing.T, w io.Writer) meter.Sink
	// onFile returns the sink writing to a file it creates at path, and
	// closes the file.
	onFile func(t *testing.T, path string) (meter.Sink, func() error)
	// decode returns the record a line holds.
	decode func(line []byte) (meter.Record, error)
}

// testFullDisk runs meterThroughFullDisk on a real full disk (a tmpfs,
// where mounting one is permitted), on a file that fails with ENOSPC, and
// on a writer that does: the output holds only whole lines (or, on a
// writer that cannot be truncated, one invalid line per line cut short),
// and exactly what was metered.
func testFullDisk(t *testing.T, ls lineSink) {
	check := func(t *testing.T, data []byte, want map[string]float64, cut int) {
		t.Helper()
		recs, invalid := parseLines(t, data, ls.decode)
		if invalid != cut {
			t.Errorf("%d invalid lines, want %d", invalid, cut)
		}
		if cut == 0 {
			checkOncePerID(t, recs)
		}
		byID := map[string]meter.Record{}
		for _, r := range recs {
			byID[r.ID] = r
		}
		var unique []meter.Record
		for _, r := range byID {
			unique = append(unique, r)
		}
		if diff := cmp.Diff(want, totals(unique)); diff != "" {
			t.Errorf("totals (-metered +written):\n%s", diff)
		}
	}

	t.Run("tmpfs", func(t *testing.T) {
		const block = 4096 // tmpfs allocates a page at a time
		dir := mountTmpfs(t, 256<<10)
		path := filepath.Join(dir, "usage.jsonl")
		sink, closeSink := ls.onFile(t, path)
		filler := filepath.Join(dir, "filler")
		fill := func() {
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			chunk := make([]byte, block)
			for {
				if _, err := f.Write(chunk); err != nil {
					if !errors.Is(err, syscall.ENOSPC) {
						t.Fatal(err)
					}
					return
				}
			}
		}
		free := func() {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		}
		afterFirstFailure := func() {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			// The line that failed did not fit in the file's last page;
			// what did fit was written, then truncated away.
			if st.Size()%block == 0 {
				t.Errorf("the file is %d bytes, a whole number of pages: no line was cut short", st.Size())
			}
		}
		want := meterThroughFullDisk(t, sink, fill, free, afterFirstFailure)
		if err := closeSink(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		check(t, data, want, 0)
	})

	for _, truncatable := range []bool{true, false} {
		name := "file failing with ENOSPC"
		if !truncatable {
			name = "writer failing with ENOSPC"
		}
		t.Run(name, func(t *testing.T) {
			d := &disk{free: 1 << 20}
			f := &diskFile{disk: d}
			var w io.Writer = f
			if !truncatable {
				w = pipe{f}
			}
			fill := func() {
				d.mu.Lock()
				d.free = 1000 // a few lines' room
				d.mu.Unlock()
			}
			afterFirstFailure := func() {
				if n := d.Cuts(); n != 1 {
					t.Errorf("%d writes cut short, want 1", n)
				}
				if data := f.Bytes(); truncatable && data[len(data)-1] != '\n' {
					t.Errorf("the file ends with part of a line: %q", tail(data))
				}
			}
			want := meterThroughFullDisk(t, ls.onWriter(t, w), fill, func() { d.Free(1 << 20) }, afterFirstFailure)
			cut := 0
			if !truncatable {
				cut = d.Cuts()
			}
			check(t, f.Bytes(), want, cut)
		})
	}
}

// parseLines returns the records of the lines in data, and how many lines
// hold none.
func parseLines(t *testing.T, data []byte, decode func([]byte) (meter.Record, error)) (recs []meter.Record, invalid int) {
	t.Helper()
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("the output ends with part of a line: %q", tail(data))
	}
	for line := range bytes.Lines(data) {
		rec, err := decode(line)
		if err != nil || rec.ID == "" {
			invalid++
			continue
		}
		recs = append(recs, rec)
	}
	return recs, invalid
}

func tail(b []byte) []byte { return b[max(len(b)-80, 0):] }
