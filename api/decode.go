package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"

	"github.com/vpcflow/vpcflow/topology"
)

// requestError is a client error found by the API itself.
type requestError struct {
	status int
	field  string
	msg    string
}

func (e *requestError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

func badRequest(field, format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf(format, args...)}
}

// withIndex prefixes an error's field with a batch index, as the store does.
func withIndex(e *requestError, i int) *requestError {
	c := *e
	if c.field == "" {
		c.field = fmt.Sprintf("[%d]", i)
	} else {
		c.field = fmt.Sprintf("[%d].%s", i, c.field)
	}
	return &c
}

// readBody reads the whole body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *requestError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &requestError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
		}
		return nil, badRequest("", "reading request body: %v", err)
	}
	return body, nil
}

// isArray says whether a JSON body is an array.
func isArray(body []byte) bool {
	t := bytes.TrimLeft(body, " \t\r\n")
	return len(t) > 0 && t[0] == '['
}

// decodeObject decodes one JSON object into dst (a pointer to a request
// struct), rejecting unknown fields, wrong types and trailing data.
func decodeObject(data []byte, dst any) *requestError {
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return badRequest("", "empty body: want a JSON object")
	}
	if t[0] != '{' {
		return badRequest("", "want a JSON object")
	}
	if err := checkKeys(t, reflect.TypeOf(dst)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err, dst)
	}
	return checkTrailing(dec)
}

// checkKeys refuses what encoding/json would quietly accept in a body
// decoded into a value of type t: a key given twice in one object (the
// decoder keeps the last: {"host":"a","Host":"b"} would mean "b"), and a
// key of a struct that matches a field only when case is ignored ("Host"
// for "host"). Both are a 400 naming the key. A body that is not valid
// JSON passes: the decoder then says what is wrong with it.
func checkKeys(data []byte, t reflect.Type) *requestError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	rerr, err := walkKeys(dec, t, "")
	if err != nil {
		return nil
	}
	return rerr
}

// unmarshalerType is json.Unmarshaler: such a value decodes itself.
var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// walkKeys reads one JSON value from dec, checking the keys of every
// object in it against t (nil: any keys, still once each). path names the
// value for errors ("", "name", "ports[2].name"). A syntax error is
// returned as err.
func walkKeys(dec *json.Decoder, t reflect.Type, path string) (*requestError, error) {
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
			fields, exact = structFields(t), true
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
			field := joinPath(path, key)
			if seen[key] {
				return badRequest(field, "given twice: give each key once"), nil
			}
			seen[key] = true
			sub := elem
			if exact {
				ft, ok := fields[key]
				if !ok {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return badRequest(field, "unknown field; did you mean %q? (keys are case-sensitive)", name), nil
						}
					}
					// Unknown keys are the decoder's to name (with the
					// allowed ones); keep reading for duplicates.
				}
				sub = ft
			}
			if rerr, err := walkKeys(dec, sub, field); rerr != nil || err != nil {
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
			if rerr, err := walkKeys(dec, elem, fmt.Sprintf("%s[%d]", path, i)); rerr != nil || err != nil {
				return rerr, err
			}
		}
		_, err := dec.Token() // ']'
		return nil, err
	}
	return nil, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields maps the JSON names of a struct's fields, as
// encoding/json names them, to their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		out[tag] = f.Type
	}
	return out
}

// decodeArray splits a JSON array into its elements.
func decodeArray(data []byte) ([]json.RawMessage, *requestError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var elems []json.RawMessage
	if err := dec.Decode(&elems); err != nil {
		return nil, jsonError(err, nil)
	}
	if err := checkTrailing(dec); err != nil {
		return nil, err
	}
	if len(elems) == 0 {
		return nil, badRequest("", "empty array: nothing to create")
	}
	return elems, nil
}

func checkTrailing(dec *json.Decoder) *requestError {
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
		return nil
	case err == nil:
		return badRequest("", "unexpected data after the JSON value")
	default:
		return badRequest("", "unexpected data after the JSON value: %v", err)
	}
}

// jsonError turns an encoding/json error into a 400 naming the field.
func jsonError(err error, dst any) *requestError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		return badRequest(fe.field, "%s", fe.msg)
	case errors.As(err, &syn):
		return badRequest("", "invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("", "invalid JSON: unexpected end of input")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("", "want %s, got %s", jsonKind(typ.Type), typ.Value)
		}
		return badRequest(typ.Field, "wrong type: want %s, got %s", jsonKind(typ.Type), typ.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if n, uerr := strconv.Unquote(name); uerr == nil {
			name = n
		}
		msg := "unknown field"
		if allowed := jsonFields(dst); allowed != "" {
			msg += "; allowed: " + allowed
		}
		return badRequest(name, "%s", msg)
	}
	return badRequest("", "invalid JSON: %v", err)
}

// jsonKind describes a Go type as the JSON a client should send.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(1)<<(t.Bits())-1)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		return "a whole number"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	}
	return t.String()
}

// jsonFields lists the JSON field names of the struct dst points to.
func jsonFields(dst any) string {
	if dst == nil {
		return ""
	}
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	return strings.Join(names, ", ")
}

// fieldError is returned by the API's own JSON decoders so that the field
// can be named.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// dpidValue reads a datapath id from a hex string ("000012345678abcd",
// "0x12345678abcd") or a JSON number.
type dpidValue struct {
	set  bool
	dpid topology.DPID
}

func (d *dpidValue) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var v topology.DPID
	if err := v.UnmarshalJSON(b); err != nil {
		return &fieldError{"dpid", err.Error()}
	}
	d.set, d.dpid = true, v
	return nil
}

// ---- conversions to topology objects ----

func checkVPC(urlVPC, bodyVPC string) *requestError {
	if bodyVPC != "" && bodyVPC != urlVPC {
		return badRequest("vpc", "the body says VPC %q but the URL says %q", bodyVPC, urlVPC)
	}
	return nil
}

func parsePrefix(field, s string) (netip.Prefix, *requestError) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, badRequest(field, "%s is not a valid CIDR: want an IPv4 prefix like 10.0.0.0/8", quote(s))
	}
	return p, nil
}

func parseAddr(field, s string) (netip.Addr, *requestError) {
	return parseAddrAs(field, s, "10.10.10.11")
}

// parseAddrAs parses an IP address; example is shown when it is not one.
func parseAddrAs(field, s, example string) (netip.Addr, *requestError) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, badRequest(field, "%s is not a valid IP address: want an IPv4 address like %s", quote(s), example)
	}
	return a, nil
}

func quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}
