package arena

import (
	"testing"
	"unsafe"
)

// TestPiecesShareArraysSizedToWhatIsLeft: pieces follow one another in
// arrays of up to the chunk size; the last array is only as big as what
// was announced; a piece cannot grow into the next; the zero value gives
// each piece its own array.
func TestPiecesShareArraysSizedToWhatIsLeft(t *testing.T) {
	a := NewBytes(100, 64)
	p1 := a.Take(30)
	p2 := a.Take(30)
	if cap(p1) != 30 || unsafe.Add(unsafe.Pointer(&p1[0]), 30) != unsafe.Pointer(&p2[0]) {
		t.Fatal("the second piece does not follow the first in its array")
	}
	p3 := a.Take(30) // 4 bytes left in the first array: a new one
	if cap(a.free)+len(p3) != 40 {
		t.Fatalf("second array holds %d bytes, want the 40 still announced", cap(a.free)+len(p3))
	}
	s1, s2 := String(&a, "ab"), String(&a, []byte("cd"))
	if s1 != "ab" || s2 != "cd" || unsafe.StringData(s2) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(s1)), 2)) {
		t.Fatalf("strings %q %q are not copies one after the other", s1, s2)
	}
	var z Bytes
	if b := z.Take(5); cap(b) != 5 || len(z.free) != 0 {
		t.Fatal("the zero arena does not give each piece its own array")
	}
}
