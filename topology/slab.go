package topology

import "unsafe"

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

// slabs are the slabs of one batch (State.do) or one load.
type slabs struct {
	hosts   slab[Host]
	subnets slab[Subnet]
}

// newSlabs makes the slabs for a batch that keeps up to hosts hosts and
// subnets route entries.
func newSlabs(hosts, subnets int) *slabs {
	return &slabs{
		hosts:   slab[Host]{left: hosts, size: hostSlabLen},
		subnets: slab[Subnet]{left: subnets, size: subnetSlabLen},
	}
}

// slabsFor makes the slabs for the objects the ops create or update.
func slabsFor(ops []Op) *slabs {
	var hosts, subnets int
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
	}
	return newSlabs(hosts, subnets)
}

// copyOf copies o into a slab, if its kind has one; else o.clone().
func (s *slabs) copyOf(o Object) Object {
	if s != nil {
		switch v := o.(type) {
		case *Host:
			p := s.hosts.next()
			*p = cloneHost(*v)
			return p
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
	switch k.(type) {
	case hostKind:
		return decodeInto(b, s.hosts.next())
	case subnetKind:
		return decodeInto(b, s.subnets.next())
	}
	return k.decode(b)
}
