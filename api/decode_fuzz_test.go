package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// The key checker before issue 17 (json.Decoder.Token), kept as the
// reference the byte scanner must agree with.

func referenceCheckKeys(data []byte, t reflect.Type) *requestError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	rerr, err := referenceWalkKeys(dec, t, "")
	if err != nil {
		return nil
	}
	return rerr
}

// walkKeys reads one JSON value from dec, checking the keys of every
// object in it against t (nil: any keys, still once each). path names the
// value for errors ("", "name", "ports[2].name"). A syntax error is
// returned as err.
func referenceWalkKeys(dec *json.Decoder, t reflect.Type, path string) (*requestError, error) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType)) {
		t = nil // its own decoder reads it; its keys are still checked for duplicates
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		exact := false
		if t != nil && t.Kind() == reflect.Struct {
			fields, exact = structFieldsOf(t), true
		}
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := kt.(string)
			field := referenceJoinPath(path, key)
			if seen[key] {
				return badRequest(field, "given twice: give each key once"), nil
			}
			seen[key] = true
			sub := elem
			if exact {
				ft, ok := fields[key]
				if !ok {
					if e := caseMismatch(fields, field, key); e != nil {
						return e, nil
					}
					// Unknown keys are the decoder's to name (with the
					// allowed ones); keep reading for duplicates.
				}
				sub = ft
			}
			if rerr, err := referenceWalkKeys(dec, sub, field); rerr != nil || err != nil {
				return rerr, err
			}
		}
		_, err := dec.Token() // '}'
		return nil, err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if rerr, err := referenceWalkKeys(dec, elem, fmt.Sprintf("%s[%d]", path, i)); rerr != nil || err != nil {
				return rerr, err
			}
		}
		_, err := dec.Token() // ']'
		return nil, err
	}
	return nil, nil
}

func referenceJoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// FuzzCheckKeysAgreesWithTokenWalk: on valid JSON, the byte scanner finds
// the same duplicate or case-only key, with the same field and message,
// as the Token-based walk it replaced (and nothing where it found
// nothing), for the request types with nested objects and arrays.
func FuzzCheckKeysAgreesWithTokenWalk(f *testing.F) {
	for _, seed := range []string{
		`{"name":"h","vswitch":"w","ip":"10.0.0.1","mac":"02:00:00:00:00:01","dpid":"1","ofport":1}`,
		`{"name":"a","name":"b"}`, `{"Name":"a"}`, `{"name":"a","security_groups":["x","y"]}`,
		`{"rules":[{"protocol":"tcp","port_range":"1/2"},{"protocol":"tcp","protocol":"udp"}]}`,
		`{"static_routes":[{"cidr":"1.0.0.0/8","next_hop":"10.0.0.1","CIDR":"x"}]}`,
		`{"a\u0062":1,"ab":2}`, `{"x":{"y":1,"y":2}}`, `[{"k":1},{"k":1,"k":2}]`, `{"n":-1.5e3,"t":true,"f":false,"z":null}`,
		"{\"\x89\":{\"y\":0,\"y\":0}}", // invalid UTF-8 in a key: named as the decoder names it
	} {
		f.Add(seed)
	}
	s := &server{}
	types := []reflect.Type{reflect.TypeOf(&hostBody{}), reflect.TypeOf(&DHCPOptionsRequest{}), reflect.TypeOf(&traceRequestForFuzz{}), nil}
	f.Fuzz(func(t *testing.T, body string) {
		if !json.Valid([]byte(body)) {
			return
		}
		for _, typ := range types {
			got, want := s.checkKeys([]byte(body), typ), referenceCheckKeys([]byte(body), typ)
			if (got == nil) != (want == nil) || got != nil && (got.field != want.field || got.msg != want.msg) {
				t.Fatalf("%v on %q: scanner %v, Token walk %v", typ, body, got, want)
			}
		}
	})
}

// traceRequestForFuzz nests a map and a slice of structs.
type traceRequestForFuzz struct {
	Name  string            `json:"name"`
	Tags  map[string]string `json:"tags"`
	Items []struct {
		Key string `json:"key"`
	} `json:"items"`
}
