package api

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// listFlows: GET /v1/switches/{dpid}/flows lists a switch's flows by
// table, priority (highest first) and match, a page at a time with
// ?limit. The page is chosen as the switch's dump goes by (pageHeap, as
// every list's), so a page of a million-flow table holds the page, not
// the table (issue 17).
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
	if p.limit == 0 && p.after == "" {
		s.listAllFlows(w, r, dpid)
		return
	}
	sel := pageHeap[controller.FlowEntry]{p: p}
	err = s.b.Flows(r.Context(), dpid, func(e *controller.FlowEntry) error {
		sel.offer(flowKey(e), *e)
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

// listAllFlows answers a flow list without ?limit or ?page_token: every
// flow, sorted in place in flowKey's order, without the keys and the
// copy a page needs (half the memory a 550,000-flow bridge's list held).
func (s *server) listAllFlows(w http.ResponseWriter, r *http.Request, dpid topology.DPID) {
	all := []controller.FlowEntry{}
	err := s.b.Flows(r.Context(), dpid, func(e *controller.FlowEntry) error {
		all = append(all, *e)
		return nil
	})
	if err != nil {
		s.writeSwitchError(w, r, dpid, err)
		return
	}
	slices.SortFunc(all, compareFlows)
	setPageHeaders(w, r, len(all), "")
	writeJSON(w, http.StatusOK, all)
}

// compareFlows orders flows as flowKey does: by table, priority (highest
// first) and match.
func compareFlows(a, b controller.FlowEntry) int {
	if a.Table != b.Table {
		return cmp.Compare(a.Table, b.Table)
	}
	if a.Priority != b.Priority {
		return cmp.Compare(b.Priority, a.Priority)
	}
	return strings.Compare(a.Match, b.Match)
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
