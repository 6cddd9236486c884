package topology

import "encoding/json"

// marshalObject is an object's stored (and API) form. Hosts and route
// entries write theirs without reflection (jsonwrite.go).
func marshalObject(o Object) ([]byte, error) {
	switch o := o.(type) {
	case *Host:
		return o.AppendJSON(nil), nil
	case *Subnet:
		return o.AppendJSON(nil), nil
	}
	return json.Marshal(o)
}
