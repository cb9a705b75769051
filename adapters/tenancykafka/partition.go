package tenancykafka

import (
	"bytes"
	"time"

	"github.com/tenancykit/tenancy/message"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partition is what a Consumer holds of one partition it was assigned:
// the records polled and not handed over yet (backlog, in offset order),
// and the records handed over, or held, and not settled (waiting, in
// offset order, at most maxPending). Only the goroutine handling the
// partition in a round touches it, and the consumer's loop between rounds.
type partition struct {
	topic string
	id    int32
	max   int // of waiting (WithMaxPending)

	backlog []*kgo.Record
	waiting []*entry

	taken     bool  // a record was taken from the backlog
	next      int64 // the offset after the last record taken
	nextEpoch int32 // the leader epoch of the last record taken

	committed int64 // the offset last committed, or -1
	paused    bool  // fetching is paused while the backlog is not empty
}

// entry is an unsettled record: deferred, failed, or held behind an
// unsettled record of the same key (never delivered yet).
type entry struct {
	rec        *kgo.Record
	due        time.Time // not before this
	deliveries int       // by this consumer since the partition was assigned
	round      uint64    // of the last delivery
}

func newPartition(topic string, id int32, maxPending int) *partition {
	return &partition{topic: topic, id: id, max: maxPending, committed: -1}
}

// commitPoint returns the offset to commit: that of the oldest unsettled
// record, else the one after the last record taken; ok is false when no
// record was taken.
func (p *partition) commitPoint() (kgo.EpochOffset, bool) {
	if len(p.waiting) > 0 {
		r := p.waiting[0].rec
		return kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}, true
	}
	return kgo.EpochOffset{Epoch: p.nextEpoch, Offset: p.next}, p.taken
}

// hasWork reports whether the partition has something to hand over at
// now.
func (p *partition) hasWork(now time.Time, round uint64) bool {
	return p.eligible(now, round) >= 0 || (len(p.backlog) > 0 && len(p.waiting) < p.max)
}

// eligible returns the index of the first waiting entry that is due at
// now, was not delivered in round and has no unsettled record of its key
// before it, or -1.
func (p *partition) eligible(now time.Time, round uint64) int {
	for i, e := range p.waiting {
		if e.due.After(now) || e.round == round || p.heldAt(i, e.rec.Key) {
			continue
		}
		return i
	}
	return -1
}

// heldAt reports whether a waiting entry before index i has key. A record
// without a key is held by none.
func (p *partition) heldAt(i int, key []byte) bool {
	if key == nil {
		return false
	}
	for _, e := range p.waiting[:i] {
		if e.rec.Key != nil && bytes.Equal(e.rec.Key, key) {
			return true
		}
	}
	return false
}

// take removes the first record of the backlog and returns it as an
// entry; held says an unsettled record of its key is waiting before it.
func (p *partition) take() (e *entry, held bool) {
	r := p.backlog[0]
	p.backlog[0] = nil
	p.backlog = p.backlog[1:]
	p.taken, p.next, p.nextEpoch = true, r.Offset+1, r.LeaderEpoch
	return &entry{rec: r}, p.heldAt(len(p.waiting), r.Key)
}

// wait keeps e unsettled, in offset order, until due.
func (p *partition) wait(e *entry, due time.Time) {
	e.due = due
	for _, w := range p.waiting {
		if w == e {
			return
		}
	}
	i := len(p.waiting)
	for i > 0 && p.waiting[i-1].rec.Offset > e.rec.Offset {
		i--
	}
	p.waiting = append(p.waiting, nil)
	copy(p.waiting[i+1:], p.waiting[i:])
	p.waiting[i] = e
}

// settled forgets e.
func (p *partition) settled(e *entry) {
	for i, w := range p.waiting {
		if w == e {
			p.waiting = append(p.waiting[:i], p.waiting[i+1:]...)
			return
		}
	}
}

// toMessage maps a record to the message a handler gets.
func toMessage(e *entry) *message.Message {
	r := e.rec
	m := &message.Message{ID: recordID(r), Body: r.Value, Source: r.Topic, Deliveries: e.deliveries}
	if len(r.Headers) > 0 {
		m.Attributes = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			m.Attributes[h.Key] = string(h.Value) // a repeated header: the last wins
		}
	}
	return m
}
