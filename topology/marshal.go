package topology

import "encoding/json"

// marshalObject is an object's stored (and API) form. Hosts and route
// entries write theirs without reflection (jsonwrite.go).
func marshalObject(o Object) ([]byte, error) {
	if b, ok := AppendObjectJSON(nil, o); ok {
		return b, nil
	}
	return json.Marshal(o)
}
