package topology

import (
	"slices"
	"unsafe"

	"github.com/vpcflow/vpcflow/internal/arena"
)

// The state's hosts and route entries (the kinds there are 100,000 of)
// are allocated from slabs: arrays of one batch's objects, so that they
// sit together in the heap. Made one by one during a bulk load, they sat
// between the garbage of decoding and validating the request (the
// caller's copies, the JSON decoder's), and the half-empty spans they
// kept were ~300 bytes a host after the load (issue 17).
//
// A slab is about 8 KB, Go's own span for objects of these sizes, so a
// slab one live object keeps costs what a span would; a batch of fewer
// objects gets a slab of its size (a single change allocates as before).
const (
	hostSlabLen   = 8192 / int(unsafe.Sizeof(Host{}))
	subnetSlabLen = 8192 / int(unsafe.Sizeof(Subnet{}))
)

// slab hands out the elements of arrays of up to size Ts, sized to the
// objects still to come (left).
type slab[T any] struct {
	free []T
	left int
	size int
}

// next returns a zero T from the current array, or from a new one.
func (s *slab[T]) next() *T {
	if len(s.free) == 0 {
		s.free = make([]T, min(s.size, max(s.left, 1)))
	}
	p := &s.free[0]
	s.free = s.free[1:]
	s.left--
	return p
}

// macLen is the length of an Ethernet MAC.
const macLen = 6

// textChunkLen is the size of the arrays a batch's names and MACs are
// copied into (internal/arena): each under 16 bytes, decoded or copied
// one by one they took a block of Go's tiny allocator among the request's
// garbage.
const textChunkLen = 4096

// textLen is how many bytes of text o's stored copy keeps: its name (a
// route entry without one gets its CIDR's, DefaultSubnetName) and a
// host's MAC (an update without one keeps the stored one).
func textLen(o Object) int {
	switch v := o.(type) {
	case *Host:
		return len(v.Name) + macLen
	case *Subnet:
		if v.Name == "" {
			var b [64]byte
			return len(v.CIDR.AppendTo(b[:0]))
		}
		return len(v.Name)
	}
	return 0
}

// slabs are the slabs of one batch (State.do) or one load.
type slabs struct {
	hosts   slab[Host]
	subnets slab[Subnet]
	text    arena.Bytes
}

// newSlabs makes the slabs for a batch that keeps up to hosts hosts and
// subnets route entries, with textLen bytes of their names and MACs.
func newSlabs(hosts, subnets, textLen int) *slabs {
	return &slabs{
		hosts:   slab[Host]{left: hosts, size: hostSlabLen},
		subnets: slab[Subnet]{left: subnets, size: subnetSlabLen},
		text:    arena.NewBytes(textLen, textChunkLen),
	}
}

// slabsFor makes the slabs for the objects the ops create or update.
func slabsFor(ops []Op) *slabs {
	var hosts, subnets, text int
	for _, op := range ops {
		if op.Kind == OpDelete {
			continue
		}
		switch op.Obj.(type) {
		case *Host:
			hosts++
		case *Subnet:
			subnets++
		}
		text += textLen(op.Obj)
	}
	return newSlabs(hosts, subnets, text)
}

// ownText moves the values of o (a slab object, checked: names and
// MACs filled in) that are its own into the text arrays.
func (s *slabs) ownText(o Object) {
	if s == nil {
		return
	}
	switch v := o.(type) {
	case *Host:
		v.Name = arena.String(&s.text, v.Name)
		if v.MAC != nil {
			m := s.text.Take(len(v.MAC))
			copy(m, v.MAC)
			v.MAC = m
		}
	case *Subnet:
		v.Name = arena.String(&s.text, v.Name)
	}
}

// copyOf copies o into a slab, if its kind has one; else o.clone(). The
// copy's MAC is still the caller's until ownText.
func (s *slabs) copyOf(o Object) Object {
	if s != nil {
		switch v := o.(type) {
		case *Host:
			p := s.hosts.next()
			*p = *v
			p.SecurityGroups = slices.Clone(v.SecurityGroups)
			return p // its text is moved once checked (ownText)
		case *Subnet:
			p := s.subnets.next()
			*p = *v
			return p
		}
	}
	return o.clone()
}

// decode decodes a stored object of kind k, into a slab if k has one.
func (s *slabs) decode(k kind, b []byte) (Object, error) {
	var o Object
	switch k.(type) {
	case hostKind:
		o = s.hosts.next()
	case subnetKind:
		o = s.subnets.next()
	default:
		return k.decode(b)
	}
	if _, err := decodeInto(b, o); err != nil {
		return nil, err
	}
	s.ownText(o)
	return o, nil
}
