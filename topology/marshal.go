package topology

import "encoding/json"

// marshalObject is an object's stored (and API) form.
func marshalObject(o Object) ([]byte, error) {
	if a, ok := o.(JSONAppender); ok {
		return a.AppendJSON(nil), nil
	}
	return json.Marshal(o)
}
