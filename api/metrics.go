package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"
)

// RequestObserver is told about every REST request once it is answered
// (Options.Observer): the route's template ("/v1/vpcs/{vpc}/hosts", or
// "unmatched" for a path no route has), the method, the status code and
// how long it took. It must be quick and safe for concurrent use.
type RequestObserver interface {
	Request(route, method string, code int, d time.Duration)
}

// routeNameKey keys the *string the route template is written into.
type routeNameKey struct{}

// observeRequests reports every request to Options.Observer. It wraps the
// whole chain, so refused (401) and unknown (404) requests count too.
func (s *server) observeRequests(next http.Handler) http.Handler {
	if s.opts.Observer == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := "unmatched"
		r = r.WithContext(context.WithValue(r.Context(), routeNameKey{}, &route))
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.opts.Observer.Request(route, r.Method, rec.status, time.Since(start))
	})
}

// nameRoute is router middleware: it records the matched route's
// template for observeRequests.
func (s *server) nameRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := r.Context().Value(routeNameKey{}).(*string); ok {
			if cur := mux.CurrentRoute(r); cur != nil {
				if t, err := cur.GetPathTemplate(); err == nil {
					*p = t
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// observeRoutes are GET /v1/openapi.json and the routes of the
// observability features that are configured: GET /metrics
// (Options.Metrics), POST /v1/trace (Options.Tracer).
func (s *server) observeRoutes() []route {
	out := []route{{"/v1/openapi.json", http.MethodGet, s.openAPI}}
	if s.opts.Metrics != nil {
		out = append(out, route{"/metrics", http.MethodGet, s.opts.Metrics.ServeHTTP})
	}
	if s.opts.Tracer != nil {
		out = append(out, route{"/v1/trace", http.MethodPost, s.trace})
	}
	return out
}
