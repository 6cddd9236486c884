// Package arena hands out the bytes a batch keeps (names, MACs, packed
// flow records) from arrays shared by the batch, instead of one
// allocation each: made one by one they sat between the batch's garbage
// (and other goroutines'), and the spans they kept alive stayed mostly
// empty after a bulk load (issue 17). An array one live piece keeps costs
// about what the span of a piece of its own would.
package arena

import "unsafe"

// Bytes hands out pieces of arrays of up to a chunk's size, sized to the
// bytes still to come. The zero value allocates each piece alone.
type Bytes struct {
	free  []byte
	left  int
	chunk int
}

// NewBytes is an arena for total bytes (a hint) in arrays of up to chunk.
func NewBytes(total, chunk int) Bytes { return Bytes{left: total, chunk: chunk} }

// Take returns n bytes (capacity n: an append copies rather than writing
// into the next piece).
func (a *Bytes) Take(n int) []byte {
	if len(a.free) < n {
		a.free = make([]byte, max(n, min(a.chunk, a.left)))
	}
	b := a.free[:n:n]
	a.free = a.free[n:]
	a.left -= n
	return b
}

// String returns a copy of s in the arena, as a string (nothing writes
// the piece after).
func String[T string | []byte](a *Bytes, s T) string {
	if len(s) == 0 {
		return ""
	}
	b := a.Take(len(s))
	copy(b, s)
	return unsafe.String(&b[0], len(b))
}
