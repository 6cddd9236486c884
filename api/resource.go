package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/vpcflow/vpcflow/topology"
)

// resource is one topology kind's REST resource, declared once in the
// kind's own file (vpcs.go, vswitches.go, hosts.go, subnets.go,
// chassis.go). The handlers around it are written once, here: list, get,
// create (one object or, with batch, an array applied all or nothing),
// update (PUT) and delete (?cascade=true).
type resource struct {
	// path is the collection's path: "/v1/vpcs" or "/v1/vpcs/{vpc}/hosts".
	path string
	// item is the URL variable naming one object ("vpc" for VPCs, "name"
	// for the rest).
	item string
	// inVPC says the collection lives in the URL's VPC: listing a missing
	// VPC is a 404 on "vpc".
	inVPC bool
	// list returns the whole list, which paginateObjects pages. Or page,
	// when set, finds the page p asks for among the items that match f
	// (selectPage), copying only them (hosts and route entries: 100,000
	// of them); its items sort by name within the VPC (p.after is a
	// name), and filters names the filter parameters it takes
	// (parseList). A list without page takes none.
	list    func(st *topology.State, v map[string]string) any
	page    func(st *topology.State, v map[string]string, f listFilter, p pageQuery) (items any, total int, last string, err error)
	filters []string
	get     func(st *topology.State, v map[string]string) (any, bool)
	// checkItem, when set, refuses a URL item that cannot name an object
	// of the kind (a dpid that is not one): 400 naming it, not a 404.
	checkItem func(v map[string]string) *requestError
	// what names a missing object: `host "x" does not exist in VPC "v"`.
	what func(v map[string]string) string
	// create decodes one object of a POST; batch accepts an array too.
	create func(s *server, data []byte, v map[string]string) (topology.Object, *requestError)
	batch  bool
	// update decodes the body of a PUT (nil: no PUT).
	update func(s *server, data []byte, v map[string]string) (topology.Object, *requestError)
	// ref names the object a DELETE (or PUT) URL points at.
	ref func(v map[string]string) topology.Object
	// location is the URL of an object.
	location func(o topology.Object) string
	// view, when set, turns what list (a page of it) or get returned
	// into what GET sends, outside the store's lock (hosts add where
	// they are attached now).
	view func(s *server, v any) any
	// extra are routes of the resource's own (a security group's rules).
	extra func(s *server) []route
}

// resources lists every kind's resource; a new kind is one file declaring
// its resource and one entry here.
func resources() []resource {
	return []resource{vpcResource(), vswitchResource(), hostResource(), subnetResource(), chassisResource(), dhcpOptionsResource(), securityGroupResource(),
		uplinkResource(), natGatewayResource(), snatEntryResource(), dnatEntryResource(), eipResource(), switchCertificateResource()}
}

// route is one route of the API.
type route struct {
	path, method string
	h            http.HandlerFunc
}

// routes are the handlers of a resource.
func (s *server) routes(rs resource) []route {
	item := rs.path + "/{" + rs.item + "}"
	out := []route{
		{rs.path, http.MethodGet, func(w http.ResponseWriter, r *http.Request) { s.listResource(w, r, rs) }},
		{item, http.MethodGet, func(w http.ResponseWriter, r *http.Request) { s.getResource(w, r, rs) }},
		{item, http.MethodDelete, func(w http.ResponseWriter, r *http.Request) {
			s.deleteOp(w, r, topology.Delete(rs.ref(mux.Vars(r)), false))
		}},
	}
	if rs.create != nil {
		out = append(out, route{rs.path, http.MethodPost, func(w http.ResponseWriter, r *http.Request) { s.createResource(w, r, rs) }})
	}
	if rs.update != nil {
		out = append(out, route{item, http.MethodPut, func(w http.ResponseWriter, r *http.Request) { s.updateResource(w, r, rs) }})
	}
	if rs.extra != nil {
		out = append(out, rs.extra(s)...)
	}
	return out
}

func (s *server) listResource(w http.ResponseWriter, r *http.Request, rs resource) {
	v := mux.Vars(r)
	p, f, rerr := parseList(r, rs.filters)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	if rs.page != nil && rs.inVPC {
		// A token of a list keyed "VPC/NAME" (before lists in a VPC were
		// keyed by name) goes on where it was: names hold no '/'.
		p.after = strings.TrimPrefix(p.after, v["vpc"]+"/")
	}
	var out any
	var err error
	var total int
	var last string
	s.b.Read(func(st *topology.State) {
		if rs.inVPC {
			if _, ok := st.VPC(v["vpc"]); !ok {
				err = notFound("vpc", "VPC %s does not exist", quote(v["vpc"]))
				return
			}
		}
		if rs.page != nil {
			out, total, last, err = rs.page(st, v, f, p)
			return
		}
		out = rs.list(st, v)
	})
	if err == nil && rs.page == nil {
		out, err = paginateObjects(w, r, p, out)
	} else if err == nil {
		setPageHeaders(w, r, total, last)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rs.view != nil {
		out = rs.view(s, out)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getResource(w http.ResponseWriter, r *http.Request, rs resource) {
	v := mux.Vars(r)
	if rs.checkItem != nil {
		if rerr := rs.checkItem(v); rerr != nil {
			s.writeError(w, r, rerr)
			return
		}
	}
	var out any
	var err error
	s.b.Read(func(st *topology.State) {
		if rs.inVPC {
			if _, ok := st.VPC(v["vpc"]); !ok {
				err = notFound("vpc", "VPC %s does not exist", quote(v["vpc"]))
				return
			}
		}
		var ok bool
		if out, ok = rs.get(st, v); !ok {
			err = notFound(rs.item, "%s", rs.what(v))
		}
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rs.view != nil {
		out = rs.view(s, out)
	}
	writeJSON(w, http.StatusOK, out)
}

// createResource reads an object (or, for a batch resource, an array of
// objects), applies them in one Backend.Apply and answers 201 with the
// object or the array.
func (s *server) createResource(w http.ResponseWriter, r *http.Request, rs resource) {
	v := mux.Vars(r)
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	s.createFromBody(w, r, body, rs.batch,
		func(data []byte) (topology.Object, *requestError) { return rs.create(s, data, v) }, rs.location)
}

// createFromBody creates what body holds: one object, or, when batch, a
// JSON array of them, each made by decode; all in one Backend.Apply. It
// answers 201 with the object (and its Location) or the array.
func (s *server) createFromBody(w http.ResponseWriter, r *http.Request, body []byte, batch bool,
	decode func([]byte) (topology.Object, *requestError), location func(topology.Object) string) {
	if !batch || !isArray(body) {
		o, rerr := decode(body)
		if rerr != nil {
			s.writeError(w, r, rerr)
			return
		}
		out, err := s.apply(r, []topology.Op{topology.Create(o)})
		if out == nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Location", location(out[0].Obj))
		if s.stored(w, r, err, out[0].Obj, nil) {
			return
		}
		writeJSON(w, http.StatusCreated, out[0].Obj)
		return
	}
	elems, rerr := decodeArray(body)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	ops := make([]topology.Op, len(elems))
	for i, e := range elems {
		o, rerr := decode(e)
		if rerr != nil {
			s.writeError(w, r, withIndex(rerr, i))
			return
		}
		ops[i] = topology.Create(o)
	}
	out, err := s.apply(r, ops)
	objs := make([]any, len(out))
	for i, op := range out {
		objs[i] = op.Obj
	}
	if s.stored(w, r, err, nil, objs) {
		return
	}
	if err != nil {
		// The store prefixes fields with "[i]." only for batches of more
		// than one; an array is always a batch to the client.
		if te, ok := topology.AsError(err); ok && len(ops) == 1 {
			err = withIndex(&requestError{status: statusOf(te.Kind), field: te.Field, msg: te.Msg}, 0)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, objs)
}

func (s *server) updateResource(w http.ResponseWriter, r *http.Request, rs resource) {
	v := mux.Vars(r)
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	o, rerr := rs.update(s, body, v)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	out, err := s.apply(r, []topology.Op{topology.Update(o)})
	if out == nil {
		s.writeError(w, r, err)
		return
	}
	if s.stored(w, r, err, out[0].Obj, nil) {
		return
	}
	writeJSON(w, http.StatusOK, out[0].Obj)
}

// deleteOp runs a delete. ?cascade=true also deletes what refers to the
// object (see topology.Op.Cascade); an object nothing can refer to
// accepts the parameter and nothing more changes.
func (s *server) deleteOp(w http.ResponseWriter, r *http.Request, op topology.Op) {
	cascade, rerr := cascadeParam(r)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	op.Cascade = cascade
	if _, err := s.apply(r, []topology.Op{op}); err != nil {
		if !s.stored(w, r, err, nil, nil) {
			s.writeError(w, r, err)
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func statusOf(k topology.ErrorKind) int {
	switch k {
	case topology.ErrNotFound:
		return http.StatusNotFound
	case topology.ErrConflict:
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

// inVPCWhat describes a missing object of a VPC.
func inVPCWhat(title string) func(v map[string]string) string {
	return func(v map[string]string) string {
		return fmt.Sprintf("%s %s does not exist in VPC %q", title, quote(v["name"]), v["vpc"])
	}
}
