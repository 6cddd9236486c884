package topology

import "encoding/json"

// marshalObject is an object's stored (and API) form.
func marshalObject(o Object) ([]byte, error) { return json.Marshal(o) }
