package api

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// What a backend may add to Backend: the periodic drift checks' counters
// and the explicit flush of one switch. A backend without them answers 501.

type driftReporter interface {
	// Drift is what the periodic drift checks found and repaired.
	Drift() controller.DriftReport
}

type switchFlusher interface {
	// Flush reconciles a switch now, deleting the flows of objects the
	// store does not know even when they are most of its flows.
	Flush(ctx context.Context, dpid topology.DPID) (controller.ReconcileResult, error)
}

// getDrift answers GET /v1/drift.
func (s *server) getDrift(w http.ResponseWriter, r *http.Request) {
	d, ok := s.b.(driftReporter)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, ErrorBody{Error: "drift checks are not available"})
		return
	}
	writeJSON(w, http.StatusOK, d.Drift())
}

// flushSwitch answers POST /v1/switches/{dpid}/flush.
func (s *server) flushSwitch(w http.ResponseWriter, r *http.Request) {
	f, ok := s.b.(switchFlusher)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, ErrorBody{Error: "flushing is not available"})
		return
	}
	dpid, err := topology.ParseDPID(mux.Vars(r)["dpid"])
	if err != nil {
		s.writeError(w, r, badRequest("dpid", "%v", err))
		return
	}
	res, err := f.Flush(r.Context(), dpid)
	if err != nil {
		s.writeSwitchError(w, r, dpid, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// Drift returns the periodic drift checks' counters per switch.
func (c *Client) Drift(ctx context.Context) (controller.DriftReport, error) {
	var out controller.DriftReport
	err := c.do(ctx, http.MethodGet, path("drift"), nil, &out)
	return out, err
}

// FlushSwitch reconciles a switch now, deleting every flow vpcflow does not
// want there, also when the store knows far fewer objects than the switch
// has flows for.
func (c *Client) FlushSwitch(ctx context.Context, dpid topology.DPID) (controller.ReconcileResult, error) {
	var out controller.ReconcileResult
	// An (empty) JSON body: writes must be application/json.
	err := c.do(ctx, http.MethodPost, path("switches", dpid.String(), "flush"), struct{}{}, &out)
	return out, err
}
