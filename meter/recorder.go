package meter

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// MaxDimensions is the most dimensions a meter can declare.
const MaxDimensions = 4

// MaxDimensionValueLen is the longest dimension value, in bytes: a longer
// one is cut to at most this many bytes, at a UTF-8 character boundary
// (so two values that differ only past it are one), and counted in
// [Stats].Truncated. Downstreams limit them too (CloudWatch to 1024).
const MaxDimensionValueLen = 256

// Overflow replaces a meter's dimension values once it has seen its
// maximum of distinct value combinations, so that a dimension fed with
// unbounded input (a raw path, a user ID) cannot grow memory or the bill.
const Overflow = "__overflow__"

// Units of measure, named as CloudWatch names them.
const (
	UnitCount        = "Count"
	UnitBytes        = "Bytes"
	UnitMilliseconds = "Milliseconds"
	UnitSeconds      = "Seconds"
	UnitNone         = "None"
)

// Meter declares something that is metered.
type Meter struct {
	// Name, such as "orders.created". Required.
	Name string
	// Unit, one of the Unit... constants or another CloudWatch unit.
	// Default UnitCount.
	Unit string
	// Dimensions are the keys of the values Add takes after the value, in
	// this order; at most MaxDimensions.
	Dimensions []string
}

type meterInfo struct {
	Meter
	index int32 // position in Recorder.byIndex

	// Dimension value tuples are interned: a cell is keyed by the tuple's
	// number, so the hot path hashes a tenant ID and a few integers. The
	// maps of numbers are copied on write, under mu (a meter has at most
	// maxTuples tuples), so that Add reads them without a lock or the
	// interface conversion and reflective hashing of a sync.Map; a meter
	// of one dimension, the usual case, hashes one string, not four.
	ids     atomic.Pointer[map[[MaxDimensions]string]int32]
	ids1    atomic.Pointer[map[string]int32]
	mu      sync.Mutex
	tuples  [][MaxDimensions]string // by number
	overflw int32                   // number of the overflow tuple, -1 until used
}

// Recorder aggregates usage per tenant, meter, dimensions and window, and
// delivers the closed windows to its sink. A sink that fails keeps the
// records pending, retried with backoff, in the spool file when there is
// one ([WithSpool]); what [Recorder.Shutdown] cannot deliver stays there
// for the next start. A Recorder is safe for concurrent use.
type Recorder struct {
	cfg     config
	meters  map[string]*meterInfo
	byIndex []*meterInfo // declared, then undeclared meters, by index
	seed    maphash.Seed
	clock   clock
	shards  [numShards]shard
	// openFrom is the start of the oldest window still open, in unix
	// nanoseconds: adds for older windows go to it instead, so a window
	// is never reported twice.
	openFrom atomic.Int64
	closed   atomic.Bool

	undeclaredMu sync.Mutex
	undeclared   map[string]*meterInfo
	byIndexMu    sync.Mutex // guards appends to byIndex after New

	flushMu sync.Mutex // one delivery at a time
	// mem holds the closed windows' records that are in no file, oldest
	// first: at most WithMaxPending after a delivery round.
	mem   []Record
	spool *spool       // nil without WithSpool
	dead  *deadLetters // nil without WithDeadLetter
	shut  bool         // Shutdown has finished: the files are closed

	// With WithCheckpoint (durable), the open windows are written to the
	// checkpoint file every interval, and closed windows go to the spool
	// before they are delivered. ckptMu orders a checkpoint with the
	// collection of windows (flushMu, when both are held, comes first).
	durable  bool
	ckptMu   sync.Mutex
	ckpt     *checkpointer // nil without WithSpool
	ckptDone chan struct{}

	pendingN atomic.Int64
	backoff  time.Duration
	retryAt  time.Time
	// seen holds the windows the Recorder ran in that are not closed yet,
	// lastBeat the latest window with a heartbeat (WithHeartbeat).
	seen     map[int64]bool
	lastBeat int64
	stats    stats

	totalsMu sync.Mutex
	totals   map[string]map[string]float64 // tenant, meter: see TenantTotals
	stop     chan struct{}
	loopDone chan struct{}
	// loopCtx is what the loop gives the sink; Shutdown cancels it when
	// its own deadline passes first, so that a hung sink cannot hold it.
	loopCtx    context.Context
	cancelLoop context.CancelFunc
}

const numShards = 64

type shard struct {
	mu sync.RWMutex
	m  map[aggKey]*cell
	// requests indexes the cells of the middleware's request meters (see
	// addRequest); it holds no usage of its own.
	requests map[requestKey]*requestCells
	// dirty is set by adds since the last checkpoint (durable only).
	dirty atomic.Bool
	_     [20]byte
}

// aggKey identifies an aggregate. window is the start of its window, in
// Unix nanoseconds, plus its part: a window closed before its end (by
// FlushAll, or recovered from a checkpoint of this instance) goes on in
// part 1, 2, ..., each a record of its own, with an ID of its own. Window
// starts are multiples of at least a second, so a part never reaches the
// next window.
type aggKey struct {
	tenant       string
	window       int64
	meter        int32
	tuple        int32
	unattributed bool
}

type cell struct {
	bits atomic.Uint64 // float64
	tier string
}

func (c *cell) add(v float64) {
	for {
		old := c.bits.Load()
		if c.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

type stats struct {
	delivered, retried, spooled, dropped, deadLettered, late, invalid, truncated atomic.Int64
}

// Stats counts what a Recorder has done.
type Stats struct {
	Delivered int64 // records the sink accepted
	Retried   int64 // delivery rounds that failed and will be tried again
	Spooled   int64 // records written to the spool file
	Pending   int   // records waiting for delivery now, in memory or spooled
	// Dropped counts the records lost because memory held WithMaxPending
	// undelivered records and neither a spool nor a dead-letter file
	// could take more.
	Dropped int64
	// DeadLettered counts the records that will not be delivered: past
	// WithMaxRecordAge, rejected by the sink, or past WithMaxPending; in
	// the dead-letter file (WithDeadLetter), or else logged at error
	// level.
	DeadLettered int64
	Late         int64 // adds after Shutdown, which no record holds
	Invalid      int64 // adds of NaN or infinite values, ignored
	// Truncated counts the dimension values cut to MaxDimensionValueLen,
	// one per value per add.
	Truncated int64
}

// New returns a Recorder for service that delivers to sink. Meters are
// declared with [WithMeters]; a spool file is loaded when [WithSpool]
// names one, and its records are delivered first. Unless [WithoutLoop], a
// goroutine delivers each window as it closes and retries failures; stop
// it with [Recorder.Shutdown].
func New(service string, sink Sink, opts ...Option) (*Recorder, error) {
	if service == "" {
		return nil, errors.New("meter: New needs the service name")
	}
	if sink == nil {
		return nil, errors.New("meter: New needs a Sink")
	}
	c := newConfig(service, sink, opts)
	if err := c.validate(); err != nil {
		return nil, err
	}
	r := &Recorder{
		cfg:        c,
		meters:     make(map[string]*meterInfo),
		seed:       maphash.MakeSeed(),
		undeclared: make(map[string]*meterInfo),
		stop:       make(chan struct{}),
		loopDone:   make(chan struct{}),
		seen:       make(map[int64]bool),
		lastBeat:   noBeat,
		totals:     make(map[string]map[string]float64),
	}
	r.loopCtx, r.cancelLoop = context.WithCancel(context.Background())
	for _, m := range c.meters {
		if m.Name == "" {
			return nil, errors.New("meter: WithMeters: a meter without a name")
		}
		if m.Name == undeclaredName || m.Name == HeartbeatMeter {
			// Its records would be taken for the fold's or the
			// heartbeats.
			return nil, fmt.Errorf("meter: WithMeters: %q is reserved for the recorder's own records", m.Name)
		}
		if _, dup := r.meters[m.Name]; dup {
			return nil, fmt.Errorf("meter: WithMeters: %q declared twice", m.Name)
		}
		if len(m.Dimensions) > MaxDimensions {
			return nil, fmt.Errorf("meter: WithMeters: %q has %d dimensions, at most %d", m.Name, len(m.Dimensions), MaxDimensions)
		}
		if m.Unit == "" {
			m.Unit = UnitCount
		}
		m.Dimensions = append([]string(nil), m.Dimensions...)
		mi := newMeterInfo(m, int32(len(r.byIndex)))
		r.meters[m.Name] = mi
		r.byIndex = append(r.byIndex, mi)
	}
	r.clock.init(c.now)
	for i := range r.shards {
		r.shards[i].m = make(map[aggKey]*cell)
		r.shards[i].requests = make(map[requestKey]*requestCells)
	}
	r.openFrom.Store(r.windowOf(r.clock.nanos()))
	r.sawWindow(r.clock.nanos())
	if c.deadLetter != "" {
		d, err := openDeadLetters(c.deadLetter)
		if err != nil {
			return nil, err
		}
		r.dead = d
	}
	if c.spool != "" {
		// Opened now rather than when Shutdown needs it: a missing
		// directory or a spool in use is a configuration mistake.
		if err := r.openFiles(); err != nil {
			if r.dead != nil {
				r.dead.close()
			}
			return nil, err
		}
	}
	if c.loop {
		go r.run()
	} else {
		close(r.loopDone)
	}
	if r.durable && c.loop {
		r.ckptDone = make(chan struct{})
		go r.checkpointLoop()
	}
	return r, nil
}

// openFiles locks and reads the spool, and recovers the checkpoint a
// previous process left, if any.
func (r *Recorder) openFiles() error {
	sp, err := lockSpool(r.cfg.spool, r.cfg.maxPending, r.cfg.logger)
	if err != nil {
		return err
	}
	r.spool = sp
	r.ckpt = &checkpointer{path: checkpointPath(r.cfg.spool)}
	// Temporary files of rewrites a crash interrupted: nobody else writes
	// them while the lock is held.
	if entries, err := os.ReadDir(filepath.Dir(r.cfg.spool)); err == nil {
		spoolTmp, ckptTmp := filepath.Base(r.cfg.spool)+".tmp", filepath.Base(r.ckpt.path)+".tmp"
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), spoolTmp) || strings.HasPrefix(e.Name(), ckptTmp) {
				os.Remove(filepath.Join(filepath.Dir(r.cfg.spool), e.Name()))
			}
		}
	}
	r.durable = r.cfg.checkpoint > 0
	fail := func(err error) error {
		sp.close()
		return err
	}
	rc, err := r.readCheckpoint(r.ckpt.path)
	if err != nil {
		return fail(err)
	}
	// The previous process may have put some of the checkpoint's
	// aggregates in the spool already, closed: those are left out.
	var inCheckpoint map[string]bool
	if rc != nil {
		inCheckpoint = make(map[string]bool, len(rc.records))
		for _, rec := range rc.records {
			inCheckpoint[rec.ID] = true
		}
	}
	if err := sp.load(func(id string) { delete(inCheckpoint, id) }); err != nil {
		return fail(err)
	}
	if rc != nil {
		rc.records = slices.DeleteFunc(rc.records, func(rec Record) bool { return !inCheckpoint[rec.ID] })
		if err := r.recover(rc); err != nil {
			return fail(err)
		}
	}
	// The recovered usage is in the spool: the checkpoint now holds this
	// process's open windows (none yet), or is gone.
	if r.durable {
		err = r.checkpoint(true)
	} else if rc != nil {
		err = os.Remove(r.ckpt.path)
	}
	if err != nil {
		return fail(fmt.Errorf("meter: checkpoint: %w", err))
	}
	r.notePending()
	return nil
}

// windowOf returns the start of the window holding the instant ns (Unix
// nanoseconds).
func (r *Recorder) windowOf(ns int64) int64 { return alignWindow(ns, int64(r.cfg.window)) }

// alignWindow returns the start of the window of w nanoseconds holding the
// instant ns.
func alignWindow(ns, w int64) int64 { return ns - ((ns%w)+w)%w }

func newMeterInfo(m Meter, index int32) *meterInfo {
	return &meterInfo{Meter: m, index: index, overflw: -1}
}

// clock reads the time for Add. time.Now reads two clocks; the default
// here reads only the monotonic one and adds it to the wall time taken at
// start, resynchronised at every flush, which halves the cost of the
// hottest call of the package. An injected clock is used as it is.
type clock struct {
	custom   func() time.Time
	baseMono time.Time    // carries the monotonic reading
	baseWall atomic.Int64 // wall time at baseMono, Unix nanoseconds
	offset   atomic.Int64 // correction from the last resync
	_        [0]func()    // not comparable
}

func (c *clock) init(custom func() time.Time) {
	if custom != nil {
		c.custom = custom
		return
	}
	c.baseMono = time.Now()
	c.baseWall.Store(c.baseMono.UnixNano())
}

func (c *clock) nanos() int64 {
	if c.custom != nil {
		return c.custom().UnixNano()
	}
	return c.baseWall.Load() + c.offset.Load() + int64(time.Since(c.baseMono))
}

func (c *clock) now() time.Time { return time.Unix(0, c.nanos()) }

// requestStart returns when the middleware's request began: the request's
// own time, read once for every layer (request.State.Start), unless the
// clock was injected.
func (c *clock) requestStart(st *request.State) time.Time {
	if c.custom != nil {
		return c.now()
	}
	return st.Start()
}

// requestEnd reads the clock once, for a request that began at start (from
// requestStart), and returns how long the request took and when it ended,
// in Unix nanoseconds. Without an injected clock, start carries a
// monotonic reading: the end is placed on the fast clock by the monotonic
// time since baseMono, as nanos does.
func (c *clock) requestEnd(start time.Time) (time.Duration, int64) {
	if c.custom != nil {
		end := c.now()
		return end.Sub(start), end.UnixNano()
	}
	took := time.Since(start)
	return took, c.baseWall.Load() + c.offset.Load() + int64(start.Sub(c.baseMono)) + int64(took)
}

// resync realigns the fast clock with the wall clock (NTP steps it).
func (c *clock) resync() {
	if c.custom != nil {
		return
	}
	now := time.Now()
	c.offset.Store(now.UnixNano() - c.baseWall.Load() - int64(now.Sub(c.baseMono)))
}

// NewContext returns a copy of ctx carrying r, for [Add]. The middleware
// does this for every request.
func NewContext(ctx context.Context, r *Recorder) context.Context {
	return context.WithValue(ctx, request.RecorderKey, r)
}

// FromContext returns the Recorder in ctx, if any.
func FromContext(ctx context.Context) (*Recorder, bool) {
	switch v := ctx.Value(request.RecorderKey).(type) {
	case *Recorder:
		return v, true
	case *request.State:
		r, ok := v.Recorder().(*Recorder)
		return r, ok
	}
	return nil, false
}

var defaultRecorder atomic.Pointer[Recorder]

// SetDefault makes r the recorder [Add] uses when the context carries
// none.
func SetDefault(r *Recorder) { defaultRecorder.Store(r) }

// Add records value on the named meter for the tenant in ctx, with the
// meter's dimension values in declaration order. The recorder is the one in
// ctx (put there by [Middleware]), else the default one; with neither, Add
// does nothing. Usage with no tenant in ctx goes to the unattributed
// bucket, which is reported like any tenant.
func Add(ctx context.Context, name string, value float64, dims ...string) {
	r, ok := FromContext(ctx)
	if !ok {
		r = defaultRecorder.Load()
	}
	r.Add(ctx, name, value, dims...)
}

// Add records value on the named meter for the tenant in ctx; see the
// package function [Add]. A nil Recorder does nothing.
func (r *Recorder) Add(ctx context.Context, name string, value float64, dims ...string) {
	if r == nil || value == 0 {
		return
	}
	t, ok := tenant.FromContext(ctx)
	r.add(t, ok, name, value, dims)
}

// add records value for t (ok false: no tenant).
func (r *Recorder) add(t tenant.Tenant, ok bool, name string, value float64, dims []string) {
	r.addAt(r.pointOf(t, ok), r.meter(name), value, dims)
}

// meter returns the meter named name, declared or not.
func (r *Recorder) meter(name string) *meterInfo {
	if m := r.meters[name]; m != nil {
		return m
	}
	return r.undeclaredMeter(name)
}

// point is where usage of one tenant goes at one moment: the tenant's part
// of the key, its tier, the window and the shard. The request meters of
// the middleware share one.
type point struct {
	tenant       string
	unattributed bool
	tier         string
	window       int64
	shard        *shard
}

// pointOf reads the clock once for t's usage now.
func (r *Recorder) pointOf(t tenant.Tenant, ok bool) point {
	return r.pointAt(t, ok, r.clock.nanos())
}

// pointAt is pointOf at the instant now, in Unix nanoseconds.
func (r *Recorder) pointAt(t tenant.Tenant, ok bool, now int64) point {
	var p point
	if ok && !t.IsZero() {
		p.tenant, p.tier = t.ID, t.Tier.String()
	} else {
		p.unattributed = true
	}
	p.window = r.windowOf(now)
	p.shard = &r.shards[maphash.String(r.seed, p.tenant)%numShards]
	return p
}

// addAt records value on m at p.
func (r *Recorder) addAt(p point, m *meterInfo, value float64, dims []string) {
	if value == 0 {
		return
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		r.stats.invalid.Add(1)
		return
	}
	if r.closed.Load() {
		r.stats.late.Add(1)
		return
	}
	k := aggKey{meter: m.index, tenant: p.tenant, unattributed: p.unattributed}
	if len(m.Dimensions) > 0 {
		k.tuple = m.tupleOf(dims, r.cfg.maxTuples, &r.stats.truncated)
	}
	s := p.shard
	s.mu.RLock()
	k.window = max(p.window, r.openFrom.Load())
	// Shutdown sets closed before it moves openFrom past every window: an
	// add that saw the moved openFrom sees closed too, and is counted Late
	// rather than stored in a window nobody will collect.
	if r.closed.Load() {
		s.mu.RUnlock()
		r.stats.late.Add(1)
		return
	}
	if c := s.m[k]; c != nil {
		c.add(value)
		if r.durable && !s.dirty.Load() {
			s.dirty.Store(true)
		}
		s.mu.RUnlock()
		return
	}
	s.mu.RUnlock()

	s.mu.Lock()
	k.window = max(p.window, r.openFrom.Load())
	if r.closed.Load() {
		s.mu.Unlock()
		r.stats.late.Add(1)
		return
	}
	c := s.m[k]
	if c == nil {
		c = &cell{tier: p.tier}
		s.m[k] = c
	}
	c.add(value)
	if r.durable {
		s.dirty.Store(true)
	}
	s.mu.Unlock()
}

// tupleOf returns the number of the dimension values, interning them; past
// max distinct tuples, the number of the overflow tuple. Values longer
// than MaxDimensionValueLen are cut, and counted in truncated.
func (m *meterInfo) tupleOf(dims []string, max int, truncated *atomic.Int64) int32 {
	id, _ := m.intern(dims, max, truncated)
	return id
}

// intern is tupleOf, and also reports whether the number is that of the
// overflow tuple, which stands for every tuple past the maximum.
func (m *meterInfo) intern(dims []string, max int, truncated *atomic.Int64) (id int32, overflow bool) {
	var t [MaxDimensions]string
	n := copy(t[:len(m.Dimensions)], dims)
	for i := range n {
		if len(t[i]) > MaxDimensionValueLen {
			t[i] = cutValue(t[i])
			truncated.Add(1)
		}
	}
	one := len(m.Dimensions) == 1
	find := func() (int32, bool) {
		if one {
			return lookup(&m.ids1, t[0])
		}
		return lookup(&m.ids, t)
	}
	if id, ok := find(); ok {
		return id, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := find(); ok {
		return id, false
	}
	if len(m.tuples) < max {
		id := int32(len(m.tuples))
		m.tuples = append(m.tuples, t)
		if one {
			publish(&m.ids1, t[0], id)
		} else {
			publish(&m.ids, t, id)
		}
		return id, false
	}
	if m.overflw < 0 {
		var over [MaxDimensions]string
		for i := range m.Dimensions {
			over[i] = Overflow
		}
		m.overflw = int32(len(m.tuples))
		m.tuples = append(m.tuples, over)
	}
	return m.overflw, true
}

// cutValue returns the longest prefix of s of at most MaxDimensionValueLen
// bytes that ends at a character boundary.
func cutValue(s string) string {
	n := MaxDimensionValueLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func lookup[K comparable](ids *atomic.Pointer[map[K]int32], k K) (int32, bool) {
	p := ids.Load()
	if p == nil {
		return 0, false
	}
	id, ok := (*p)[k]
	return id, ok
}

// publish replaces the map in ids with a copy holding k too. The caller
// holds the meter's mu.
func publish[K comparable](ids *atomic.Pointer[map[K]int32], k K, id int32) {
	var next map[K]int32
	if old := ids.Load(); old != nil {
		next = maps.Clone(*old)
	} else {
		next = make(map[K]int32)
	}
	next[k] = id
	ids.Store(&next)
}

func (m *meterInfo) tuple(id int32) [MaxDimensions]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tuples[id]
}

// maxUndeclared bounds the meters created by Add for names never declared.
const maxUndeclared = 16

// undeclaredName collects usage on undeclared meters past maxUndeclared.
const undeclaredName = "meter.undeclared"

// HeartbeatMeter is the meter of the heartbeat records ([WithHeartbeat]).
// It cannot be declared, and Add on it goes to meter.undeclared.
const HeartbeatMeter = "meter.heartbeat"

func (r *Recorder) undeclaredMeter(name string) *meterInfo {
	r.undeclaredMu.Lock()
	defer r.undeclaredMu.Unlock()
	if m, ok := r.undeclared[name]; ok {
		return m
	}
	if len(r.undeclared) >= maxUndeclared || name == HeartbeatMeter {
		name = undeclaredName
		if m, ok := r.undeclared[name]; ok {
			return m
		}
	}
	m := newMeterInfo(Meter{Name: name, Unit: UnitNone}, 0)
	r.undeclared[name] = m
	r.byIndexMu.Lock()
	m.index = int32(len(r.byIndex))
	r.byIndex = append(r.byIndex, m)
	r.byIndexMu.Unlock()
	r.cfg.logger.Warn("meter: Add on a meter that was not declared; it is recorded with unit None", "meter", name)
	return m
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() Stats {
	return Stats{
		Delivered:    r.stats.delivered.Load(),
		Retried:      r.stats.retried.Load(),
		Spooled:      r.stats.spooled.Load(),
		Pending:      int(r.pendingN.Load()),
		Dropped:      r.stats.dropped.Load(),
		DeadLettered: r.stats.deadLettered.Load(),
		Truncated:    r.stats.truncated.Load(),
		Late:         r.stats.late.Load(),
		Invalid:      r.stats.invalid.Load(),
	}
}

// collect moves every window that starts before until out of the
// aggregates and into records, followed by their heartbeats
// (WithHeartbeat). flushMu is held.
func (r *Recorder) collect(until int64) []Record {
	var from int64 // the first window (and part) it closes
	for {
		from = r.openFrom.Load()
		if until <= from || r.openFrom.CompareAndSwap(from, until) {
			break
		}
	}
	type closed struct {
		k aggKey
		c *cell
	}
	var cells []closed
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for k, c := range s.m {
			if k.window >= until {
				continue
			}
			delete(s.m, k)
			cells = append(cells, closed{k, c})
		}
		for k := range s.requests {
			if k.window < until {
				delete(s.requests, k)
			}
		}
		s.mu.Unlock()
	}
	// Built outside the shard locks: hashing IDs must not stall adds. No
	// add can reach a removed cell: it was removed under the lock every
	// add holds.
	out := make([]Record, len(cells))
	for i, cc := range cells {
		out[i] = r.record(cc.k, cc.c)
	}
	r.addTotals(out)
	if r.cfg.heartbeat {
		perKey := make(map[int64]int)
		for _, cc := range cells {
			perKey[cc.k.window]++
		}
		out = append(out, r.heartbeats(perKey, from, until)...)
	}
	return out
}

func (r *Recorder) record(k aggKey, c *cell) Record {
	r.byIndexMu.Lock()
	m := r.byIndex[k.meter]
	r.byIndexMu.Unlock()
	startNs := r.windowOf(k.window)
	start := time.Unix(0, startNs).UTC()
	rec := Record{
		TenantID:     k.tenant,
		Unattributed: k.unattributed,
		Tier:         c.tier,
		Meter:        m.Name,
		Value:        finite(math.Float64frombits(c.bits.Load())),
		Unit:         m.Unit,
		WindowStart:  start,
		WindowEnd:    start.Add(r.cfg.window),
		Service:      r.cfg.service,
		Instance:     r.cfg.instance,
	}
	if len(m.Dimensions) > 0 {
		tuple := m.tuple(k.tuple)
		rec.Dimensions = make(map[string]string, len(m.Dimensions))
		for i, d := range m.Dimensions {
			rec.Dimensions[d] = tuple[i]
		}
	}
	rec.ID = recordID(rec.Service, rec.Instance, rec.TenantID, rec.Unattributed, rec.Meter, rec.Dimensions, start, k.window-startNs)
	return rec
}

// defaultInstance is the host name and a random suffix per process: a
// restarted process (same pod, same host name) must not produce the IDs of
// the windows its predecessor delivered.
func defaultInstance() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	return h + "-" + rand.Text()[:8]
}
