package controller

import (
	"iter"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/internal/paged"
)

// hostsAt finds the host attached at a switch port (for packet-ins): per
// datapath, host IDs by OpenFlow port in pages of consecutive ports (OVS
// numbers a bridge's ports from 1 up: a map keyed by attachment cost ~50
// bytes a host at 100,000, issue 17). Host ID 0 is never handed out.
type hostsAt struct {
	byDPID map[uint64]*paged.Table[uint32]
}

func newHostsAt() hostsAt { return hostsAt{byDPID: map[uint64]*paged.Table[uint32]{}} }

func (h *hostsAt) get(at pipeline.Attachment) (uint32, bool) {
	t := h.byDPID[at.DPID]
	if t == nil {
		return 0, false
	}
	return t.Get(at.OFPort)
}

func (h *hostsAt) set(at pipeline.Attachment, id uint32) {
	t := h.byDPID[at.DPID]
	if t == nil {
		t = &paged.Table[uint32]{}
		h.byDPID[at.DPID] = t
	}
	t.Set(at.OFPort, id)
}

func (h *hostsAt) del(at pipeline.Attachment) {
	t := h.byDPID[at.DPID]
	if t == nil {
		return
	}
	t.Delete(at.OFPort)
	if t.Len() == 0 {
		delete(h.byDPID, at.DPID)
	}
}

func (h *hostsAt) len() int {
	n := 0
	for _, t := range h.byDPID {
		n += t.Len()
	}
	return n
}

// all yields every attachment and its host.
func (h *hostsAt) all() iter.Seq2[pipeline.Attachment, uint32] {
	return func(yield func(pipeline.Attachment, uint32) bool) {
		for dpid, t := range h.byDPID {
			for port, id := range t.All() {
				if !yield(pipeline.Attachment{DPID: dpid, OFPort: port}, id) {
					return
				}
			}
		}
	}
}
