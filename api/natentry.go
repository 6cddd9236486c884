package api

import "github.com/vpcflow/vpcflow/topology"

// natEntryBody is the request body of an entry of a VPC's NAT gateway
// (SNAT, DNAT): it may leave the gateway out (the VPC's is meant) and
// cannot rename the entry.
type natEntryBody[O topology.Object] interface {
	entryName() string
	gateway() *string
	toEntry(vpc, name string) (O, *requestError)
}

func (req *SNATEntryRequest) entryName() string { return req.Name }
func (req *SNATEntryRequest) gateway() *string  { return &req.NATGateway }
func (req *DNATEntryRequest) entryName() string { return req.Name }
func (req *DNATEntryRequest) gateway() *string  { return &req.NATGateway }

// natEntryWrites are the create and update handlers of a NAT entry
// resource whose body is R; what names the kind in errors ("a DNAT entry").
func natEntryWrites[R any, P interface {
	*R
	natEntryBody[O]
}, O topology.Object](what string) (create, update func(*server, []byte, map[string]string) (topology.Object, *requestError)) {
	build := func(req P, vpc, name string) (topology.Object, *requestError) {
		e, err := req.toEntry(vpc, name)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
	create = func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
		req := P(new(R))
		if err := s.decodeObject(data, req); err != nil {
			return nil, err
		}
		if gw := req.gateway(); *gw == "" {
			*gw = s.vpcNATGateway(v["vpc"])
		}
		return build(req, v["vpc"], req.entryName())
	}
	update = func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
		req := P(new(R))
		if err := s.decodeObject(data, req); err != nil {
			return nil, err
		}
		if n := req.entryName(); n != "" && n != v["name"] {
			return nil, badRequest("name", "%s cannot be renamed (the body says %q but the URL says %q)", what, n, v["name"])
		}
		return build(req, v["vpc"], v["name"])
	}
	return create, update
}
