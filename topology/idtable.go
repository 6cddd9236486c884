package topology

import "iter"

// idPageSize is how many IDs one page of an idTable covers.
const idPageSize = 256

// idTable holds one kind's objects by ID. IDs are handed out in order and
// never reused, so the objects live in pages of consecutive IDs (16 bytes
// a slot) rather than in a map (~46 bytes an entry at 100,000 hosts,
// issue 17); a page goes when its last object does.
type idTable struct {
	pages map[uint32]*idPage // ID/idPageSize → page
	n     int
}

type idPage struct {
	objs [idPageSize]Object
	n    int
}

func newIDTable() idTable { return idTable{pages: map[uint32]*idPage{}} }

// get returns the object with id.
func (t *idTable) get(id uint32) (Object, bool) {
	p := t.pages[id/idPageSize]
	if p == nil {
		return nil, false
	}
	o := p.objs[id%idPageSize]
	return o, o != nil
}

// at is get without the flag (nil: none).
func (t *idTable) at(id uint32) Object {
	o, _ := t.get(id)
	return o
}

// set stores o (not nil) under id.
func (t *idTable) set(id uint32, o Object) {
	p := t.pages[id/idPageSize]
	if p == nil {
		p = &idPage{}
		t.pages[id/idPageSize] = p
	}
	if p.objs[id%idPageSize] == nil {
		p.n++
		t.n++
	}
	p.objs[id%idPageSize] = o
}

// del removes the object with id, if any.
func (t *idTable) del(id uint32) {
	p := t.pages[id/idPageSize]
	if p == nil || p.objs[id%idPageSize] == nil {
		return
	}
	p.objs[id%idPageSize] = nil
	p.n--
	t.n--
	if p.n == 0 {
		delete(t.pages, id/idPageSize)
	}
}

func (t *idTable) len() int { return t.n }

// all yields every object, in no particular order.
func (t *idTable) all() iter.Seq[Object] {
	return func(yield func(Object) bool) {
		for _, p := range t.pages {
			for _, o := range p.objs {
				if o != nil && !yield(o) {
					return
				}
			}
		}
	}
}
