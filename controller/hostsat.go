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
	paged.Keyed[uint64, uint32]
}

func (h *hostsAt) get(at pipeline.Attachment) (uint32, bool) { return h.Get(at.DPID, at.OFPort) }
func (h *hostsAt) set(at pipeline.Attachment, id uint32)     { h.Set(at.DPID, at.OFPort, id) }
func (h *hostsAt) del(at pipeline.Attachment)                { h.Delete(at.DPID, at.OFPort) }
func (h *hostsAt) len() int                                  { return h.Len() }

// all yields every attachment and its host.
func (h *hostsAt) all() iter.Seq2[pipeline.Attachment, uint32] {
	return func(yield func(pipeline.Attachment, uint32) bool) {
		h.Keyed.All(func(dpid uint64, port, id uint32) bool {
			return yield(pipeline.Attachment{DPID: dpid, OFPort: port}, id)
		})
	}
}
