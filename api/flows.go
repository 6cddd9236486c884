package api

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// listFlows: GET /v1/switches/{dpid}/flows lists a switch's flows by
// table, priority (highest first) and match, a page at a time with
// ?limit. The page is chosen as the switch's dump goes by, so a page of a
// million-flow table holds the page, not the table (issue 17).
func (s *server) listFlows(w http.ResponseWriter, r *http.Request) {
	raw := mux.Vars(r)["dpid"]
	dpid, err := topology.ParseDPID(raw)
	if err != nil {
		s.writeError(w, r, badRequest("dpid", "%v", err))
		return
	}
	p, rerr := parsePage(r)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	sel := flowPage{after: p.after, limit: p.limit}
	err = s.b.Flows(r.Context(), dpid, func(e *controller.FlowEntry) error {
		sel.offer(e)
		return nil
	})
	if err != nil {
		s.writeSwitchError(w, r, dpid, err)
		return
	}
	page, last := sel.page()
	setPageHeaders(w, r, sel.total, last)
	writeJSON(w, http.StatusOK, page)
}

// writeSwitchError writes err of a request about switch dpid: a 404
// naming the dpid when it is not connected.
func (s *server) writeSwitchError(w http.ResponseWriter, r *http.Request, dpid topology.DPID, err error) {
	if errors.Is(err, controller.ErrUnknownSwitch) {
		err = notFound("dpid", "switch %s is not connected", dpid)
	}
	s.writeError(w, r, err)
}

// flowKey orders flows as ovs-ofctl prints them: by table, priority
// (highest first) and match, which together are unique on a switch. It
// is what a page token of a flow list holds.
func flowKey(f *controller.FlowEntry) string {
	return fmt.Sprintf("%03d/%05d/%s", f.Table, 65535-int(f.Priority), f.Match)
}

// compareFlows orders flows as their flowKeys do, without building them.
func compareFlows(a, b *controller.FlowEntry) int {
	return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.Match, b.Match))
}

// flowPage picks a page of flows from a dump, one flow at a time: the
// first limit flows after the page token in key order (every flow when
// limit is 0). With a limit it holds limit+1 flows at most (a heap whose
// top is the greatest key: the one to let go of when a smaller one comes).
type flowPage struct {
	after string
	limit int
	items []keyedFlow
	total int // flows offered (X-Total-Count)
}

type keyedFlow struct {
	key string // "" without a limit
	e   controller.FlowEntry
}

func (p *flowPage) offer(e *controller.FlowEntry) {
	p.total++
	if p.limit == 0 {
		p.items = append(p.items, keyedFlow{e: *e})
		return
	}
	k := flowKey(e)
	if p.after != "" && k <= p.after {
		return
	}
	switch {
	case len(p.items) <= p.limit:
		heap.Push(p, keyedFlow{key: k, e: *e})
	case k < p.items[0].key:
		p.items[0] = keyedFlow{key: k, e: *e}
		heap.Fix(p, 0)
	}
}

// page is the flows picked, in key order, and the key of the last one
// when more follow ("" on the last page).
func (p *flowPage) page() ([]controller.FlowEntry, string) {
	slices.SortFunc(p.items, func(a, b keyedFlow) int { return compareFlows(&a.e, &b.e) })
	last := ""
	if p.limit > 0 && len(p.items) > p.limit {
		p.items = p.items[:p.limit]
		last = p.items[p.limit-1].key
	}
	out := make([]controller.FlowEntry, len(p.items))
	for i := range p.items {
		out[i] = p.items[i].e
	}
	return out, last
}

// heap.Interface: a max-heap by key.
func (p *flowPage) Len() int           { return len(p.items) }
func (p *flowPage) Less(i, j int) bool { return p.items[i].key > p.items[j].key }
func (p *flowPage) Swap(i, j int)      { p.items[i], p.items[j] = p.items[j], p.items[i] }
func (p *flowPage) Push(x any)         { p.items = append(p.items, x.(keyedFlow)) }
func (p *flowPage) Pop() any {
	x := p.items[len(p.items)-1]
	p.items = p.items[:len(p.items)-1]
	return x
}
