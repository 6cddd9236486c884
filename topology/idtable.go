package topology

import (
	"iter"

	"github.com/vpcflow/vpcflow/internal/paged"
)

// idTable holds one kind's objects by ID in pages of consecutive IDs
// (internal/paged): IDs are handed out in order and never reused, and a
// map cost ~46 bytes an entry at 100,000 hosts (issue 17).
type idTable struct {
	paged.Table[Object]
}

func newIDTable() idTable { return idTable{} }

func (t *idTable) get(id uint32) (Object, bool) { return t.Get(id) }

// at is get without the flag (nil: none).
func (t *idTable) at(id uint32) Object {
	o, _ := t.Get(id)
	return o
}

func (t *idTable) set(id uint32, o Object) { t.Set(id, o) }
func (t *idTable) del(id uint32)           { t.Delete(id) }
func (t *idTable) len() int                { return t.Len() }

// all yields every object, in no particular order.
func (t *idTable) all() iter.Seq[Object] {
	return func(yield func(Object) bool) {
		for _, o := range t.All() {
			if !yield(o) {
				return
			}
		}
	}
}
