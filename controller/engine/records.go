package engine

import (
	"iter"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/internal/paged"
)

// ownerRecords holds each owner's packed record (see pack), by owner kind
// and then by ID in pages of consecutive IDs: a map keyed by owner cost
// ~46 bytes an owner at 100,000 hosts and their route entries (issue 17).
// A record is never empty (an owner without flows has none).
type ownerRecords struct {
	paged.Keyed[pipeline.OwnerKind, string]
}

func (r *ownerRecords) get(o pipeline.Owner) (string, bool) { return r.Get(o.Kind, o.ID) }
func (r *ownerRecords) set(o pipeline.Owner, rec string)    { r.Set(o.Kind, o.ID, rec) }
func (r *ownerRecords) del(o pipeline.Owner)                { r.Delete(o.Kind, o.ID) }
func (r *ownerRecords) len() int                            { return r.Len() }

// all yields every owner and its record, in no particular order.
func (r *ownerRecords) all() iter.Seq2[pipeline.Owner, string] {
	return func(yield func(pipeline.Owner, string) bool) {
		r.Keyed.All(func(k pipeline.OwnerKind, id uint32, rec string) bool {
			return yield(pipeline.Owner{Kind: k, ID: id}, rec)
		})
	}
}

// masked yields the owners whose ID's bits under mask equal value's, and
// their records, looking only at those IDs (see paged.Table.Masked).
func (r *ownerRecords) masked(mask, value uint32) iter.Seq2[pipeline.Owner, string] {
	return func(yield func(pipeline.Owner, string) bool) {
		for k, tb := range r.Tables() {
			for id, rec := range tb.Masked(mask, value) {
				if !yield(pipeline.Owner{Kind: k, ID: id}, rec) {
					return
				}
			}
		}
	}
}
