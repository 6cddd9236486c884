package engine

import (
	"math/bits"

	"github.com/vpcflow/vpcflow/openflow"
)

// keyIndex finds an owner's flows by slot (datapath, table, priority,
// match) without building a key string for each: a map from a 64-bit
// hash of the slot to the first flow with that hash, the others with the
// same hash chained behind it, and sameKey deciding. An update keys every
// flow of an owner with more than 32 of them twice (its new flows among
// themselves, then against its old ones): with openflow.Flow.Key that
// was a third of a security group rule change's CPU and half its
// allocations (BenchmarkRuleChange).
type keyIndex struct {
	first map[uint64]int32
	next  []int32 // the next flow with the same hash; -1 ends a chain
}

// maxKeptIndex is the most flows whose index an engine keeps between
// updates (a map only grows).
const maxKeptIndex = 4096

// reset empties the index for n flows.
func (x *keyIndex) reset(n int) {
	if x.first == nil || len(x.first) > maxKeptIndex {
		x.first = make(map[uint64]int32, n)
	} else {
		clear(x.first)
	}
	if cap(x.next) > maxKeptIndex {
		x.next = nil
	}
	x.next = x.next[:0]
}

// add indexes flow i (the next one: i == the number added so far) under
// hash h.
func (x *keyIndex) add(h uint64, i int) {
	head, ok := x.first[h]
	if !ok {
		head = -1
	}
	x.next = append(x.next, head)
	x.first[h] = int32(i)
}

// find returns the last flow added under h for which same says yes, or -1.
func (x *keyIndex) find(h uint64, same func(i int) bool) int {
	i, ok := x.first[h]
	if !ok {
		return -1
	}
	for ; i >= 0; i = x.next[i] {
		if same(int(i)) {
			return int(i)
		}
	}
	return -1
}

// slotHash hashes what sameKey compares, with the datapath: equal slots
// hash equal.
func slotHash(dpid uint64, f *openflow.Flow) uint64 {
	h := mix(dpid ^ 0x9e3779b97f4a7c15)
	h = mix(h ^ uint64(f.Table)<<16 ^ uint64(f.Priority))
	for _, fm := range f.Match {
		tag := uint64(fm.Field) << 1
		if fm.HasMask {
			tag |= 1
		}
		h = mix(h ^ tag)
		h = mix(h ^ fm.Value)
		if fm.HasMask {
			h = mix(h ^ fm.Mask)
		}
	}
	return h
}

// mix is a 64-bit multiply-fold mixer (wyhash's).
func mix(v uint64) uint64 {
	hi, lo := bits.Mul64(v^0xa0761d6478bd642f, 0xe7037ed1a0b428db)
	return hi ^ lo
}
