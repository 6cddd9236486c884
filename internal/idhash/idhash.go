// Package idhash finds object IDs by a hash of a value the objects hold
// (a key, a unique address), keeping only the hash and the ID.
//
// vpcflow's store finds each object by the hash of its key and of each of
// its unique values, and checks the object it finds (issue 17: a Go map of
// 64-bit hash to ID cost ~29 bytes an entry at 100,000 hosts and needed a
// spill map of whole values for the hashes two values share). A Table is
// an open-addressing multiset of (32-bit hash, ID) pairs, 8 bytes a slot,
// at most 4/5 full and grown by half: 10–15 bytes an entry. Pairs with the same hash are all
// kept; the caller's is function tells its own from the others.
package idhash

// Table is a multiset of (hash, ID) pairs. IDs are never 0 (an empty
// slot). The zero Table is empty and ready.
type Table struct {
	slots []slot
	n     int
}

type slot struct{ hash, id uint32 }

// minSlots is the smallest table.
const minSlots = 8

// Hash32 folds a 64-bit hash (maphash) to the 32 bits a Table keeps.
func Hash32(h uint64) uint32 { return uint32(h ^ h>>32) }

// Len is the number of pairs.
func (t *Table) Len() int { return t.n }

// Slots is the table's capacity in pairs (for tests and measurements).
func (t *Table) Slots() int { return len(t.slots) }

// home is the slot a hash starts probing from: the hash scaled to the
// table (any length, not only powers of two).
func (t *Table) home(hash uint32) int {
	return int(uint64(hash) * uint64(len(t.slots)) >> 32)
}

// next is the slot after i, wrapping around.
func (t *Table) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

// Find returns the first ID stored under hash for which is returns true.
func (t *Table) Find(hash uint32, is func(id uint32) bool) (uint32, bool) {
	if t.n == 0 {
		return 0, false
	}
	for i := t.home(hash); ; i = t.next(i) {
		s := t.slots[i]
		if s.id == 0 {
			return 0, false
		}
		if s.hash == hash && is(s.id) {
			return s.id, true
		}
	}
}

// Add stores (hash, id) unless it is there already.
func (t *Table) Add(hash, id uint32) {
	if id == 0 {
		panic("idhash: ID 0")
	}
	if _, ok := t.Find(hash, func(x uint32) bool { return x == id }); ok {
		return
	}
	if (t.n+1)*5 > len(t.slots)*4 {
		t.resize(max(minSlots, len(t.slots)*3/2))
	}
	t.place(slot{hash, id})
	t.n++
}

// place puts s in the first free slot from its home.
func (t *Table) place(s slot) {
	i := t.home(s.hash)
	for t.slots[i].id != 0 {
		i = t.next(i)
	}
	t.slots[i] = s
}

// Remove takes (hash, id) out and reports whether it was there.
func (t *Table) Remove(hash, id uint32) bool {
	if t.n == 0 {
		return false
	}
	i := t.home(hash)
	for {
		s := t.slots[i]
		if s.id == 0 {
			return false
		}
		if s.hash == hash && s.id == id {
			break
		}
		i = t.next(i)
	}
	// Shift back the pairs after i that would no longer be found from
	// their home slot across the hole (linear probing without
	// tombstones).
	for j := i; ; {
		j = t.next(j)
		s := t.slots[j]
		if s.id == 0 {
			break
		}
		home := t.home(s.hash)
		// s stays when its home lies cyclically in (i, j].
		if i <= j {
			if i < home && home <= j {
				continue
			}
		} else if i < home || home <= j {
			continue
		}
		t.slots[i] = s
		i = j
	}
	t.slots[i] = slot{}
	t.n--
	if len(t.slots) > minSlots && t.n*4 < len(t.slots) {
		t.resize(max(minSlots, len(t.slots)/2))
	}
	return true
}

// resize moves every pair to a table of n slots.
func (t *Table) resize(n int) {
	old := t.slots
	t.slots = make([]slot, n)
	for _, s := range old {
		if s.id != 0 {
			t.place(s)
		}
	}
}

// All yields every pair, in no particular order.
func (t *Table) All(yield func(hash, id uint32) bool) {
	for _, s := range t.slots {
		if s.id != 0 && !yield(s.hash, s.id) {
			return
		}
	}
}
