package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/vpcflow/vpcflow/trace"
)

// Tracer runs packet traces (the controller: Controller.Trace).
type Tracer interface {
	Trace(ctx context.Context, req trace.Request) (*trace.Result, error)
}

// trace: POST /v1/trace simulates a packet (trace.Request) and answers
// the trace (trace.Result): 400 for a bad request, 404 for a VPC or host
// that does not exist.
func (s *server) trace(w http.ResponseWriter, r *http.Request) {
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	var req trace.Request
	if rerr := s.decodeObject(body, &req); rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	res, err := s.opts.Tracer.Trace(r.Context(), req)
	var te *trace.Error
	switch {
	case errors.As(err, &te) && te.Missing:
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: te.Msg, Field: te.Field})
	case errors.As(err, &te):
		writeJSON(w, http.StatusBadRequest, ErrorBody{Error: te.Msg, Field: te.Field})
	case err != nil:
		s.writeError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// Trace simulates a packet through the pipeline (POST /v1/trace).
func (c *Client) Trace(ctx context.Context, req trace.Request) (*trace.Result, error) {
	var out trace.Result
	if err := c.do(ctx, http.MethodPost, path("trace"), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
