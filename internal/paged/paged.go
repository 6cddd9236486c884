// Package paged maps uint32 IDs to values in pages of consecutive IDs.
//
// vpcflow hands out object IDs in order and never reuses them, so the
// objects of a kind sit in a few dense ranges: a page of 255 slots costs
// the size of its values and nothing per entry, where a Go map costs
// ~30–46 bytes an entry (issue 17: 100,000 hosts in under 1 KB each). A
// page goes when its last value does, so deleted ranges cost nothing.
package paged

import "iter"

// PageSize is how many consecutive IDs one page covers: 255 16-byte
// values (an interface, a string) are 4,080 bytes, and with the 8-byte
// header Go puts before an object of pointers over 512 bytes, 4,088 fit
// the 4,096-byte size class; 256 of them took the next one, 4,864.
const PageSize = 255

// Table maps IDs to values; the zero V means "absent" (a nil interface,
// an empty string), so it is never stored.
type Table[V comparable] struct {
	pages map[uint32]page[V] // ID/PageSize → page
	n     int
}

// page is one page's values and how many are set (kept here, not next
// to the values, for the size class: see PageSize).
type page[V comparable] struct {
	vals *[PageSize]V
	n    int
}

// Get returns the value of id.
func (t *Table[V]) Get(id uint32) (V, bool) {
	var zero V
	p, ok := t.pages[id/PageSize]
	if !ok {
		return zero, false
	}
	v := p.vals[id%PageSize]
	return v, v != zero
}

// Set stores v (not the zero V: that is Delete) under id.
func (t *Table[V]) Set(id uint32, v V) {
	var zero V
	if v == zero {
		t.Delete(id)
		return
	}
	if t.pages == nil {
		t.pages = map[uint32]page[V]{}
	}
	p, ok := t.pages[id/PageSize]
	if !ok {
		p = page[V]{vals: new([PageSize]V)}
	}
	if p.vals[id%PageSize] == zero {
		p.n++
		t.n++
		t.pages[id/PageSize] = p
	}
	p.vals[id%PageSize] = v
}

// Delete removes the value of id, if any.
func (t *Table[V]) Delete(id uint32) {
	var zero V
	p, ok := t.pages[id/PageSize]
	if !ok || p.vals[id%PageSize] == zero {
		return
	}
	p.vals[id%PageSize] = zero
	p.n--
	t.n--
	if p.n == 0 {
		delete(t.pages, id/PageSize)
		return
	}
	t.pages[id/PageSize] = p
}

// Len is how many values the table holds.
func (t *Table[V]) Len() int { return t.n }

// Pages is how many pages the table holds (for tests).
func (t *Table[V]) Pages() int { return len(t.pages) }

// All yields every ID and its value, in no particular order.
func (t *Table[V]) All() iter.Seq2[uint32, V] {
	return func(yield func(uint32, V) bool) {
		var zero V
		for base, p := range t.pages {
			for i, v := range p.vals {
				if v != zero && !yield(base*PageSize+uint32(i), v) {
					return
				}
			}
		}
	}
}

// Masked yields every ID whose low bits under mask equal value's, and its
// value, in no particular order. For a mask of low bits (2^k-1) it looks
// only at those IDs (one in 2^k of each page), not at every slot.
func (t *Table[V]) Masked(mask, value uint32) iter.Seq2[uint32, V] {
	return func(yield func(uint32, V) bool) {
		var zero V
		value &= mask
		step := uint64(mask) + 1
		low := step&(step-1) == 0 // mask is 2^k-1
		for base, p := range t.pages {
			first := uint64(base) * PageSize
			i := uint64(0)
			if low {
				// The first ID of the page with those low bits.
				i = (uint64(value) - first%step + step) % step
			}
			for ; i < PageSize; i++ {
				id := uint32(first + i)
				if id&mask != value {
					continue
				}
				if v := p.vals[i]; v != zero && !yield(id, v) {
					return
				}
				if low {
					i += step - 1
				}
			}
		}
	}
}

// Keyed is a Table per key (an owner kind, a datapath): IDs are dense
// within each key, not across them.
type Keyed[K comparable, V comparable] struct {
	tables map[K]*Table[V]
}

// Get returns the value of id under k.
func (t *Keyed[K, V]) Get(k K, id uint32) (V, bool) {
	tb := t.tables[k]
	if tb == nil {
		var zero V
		return zero, false
	}
	return tb.Get(id)
}

// Set stores v (the zero V deletes) under k and id.
func (t *Keyed[K, V]) Set(k K, id uint32, v V) {
	tb := t.tables[k]
	if tb == nil {
		if t.tables == nil {
			t.tables = map[K]*Table[V]{}
		}
		tb = &Table[V]{}
		t.tables[k] = tb
	}
	tb.Set(id, v)
	if tb.Len() == 0 {
		delete(t.tables, k)
	}
}

// Delete removes the value of id under k, if any.
func (t *Keyed[K, V]) Delete(k K, id uint32) {
	if tb := t.tables[k]; tb != nil {
		tb.Delete(id)
		if tb.Len() == 0 {
			delete(t.tables, k)
		}
	}
}

// Len is how many values the tables hold.
func (t *Keyed[K, V]) Len() int {
	n := 0
	for _, tb := range t.tables {
		n += tb.Len()
	}
	return n
}

// All calls fn with every key, ID and value, in no particular order,
// until it returns false.
func (t *Keyed[K, V]) All(fn func(k K, id uint32, v V) bool) {
	for k, tb := range t.tables {
		for id, v := range tb.All() {
			if !fn(k, id, v) {
				return
			}
		}
	}
}

// Tables yields each key and its table, in no particular order.
func (t *Keyed[K, V]) Tables() iter.Seq2[K, *Table[V]] {
	return func(yield func(K, *Table[V]) bool) {
		for k, tb := range t.tables {
			if !yield(k, tb) {
				return
			}
		}
	}
}
