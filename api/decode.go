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
	"slices"
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
func (s *server) decodeObject(data []byte, dst any) *requestError {
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return badRequest("", "empty body: want a JSON object")
	}
	if t[0] != '{' {
		return badRequest("", "want a JSON object")
	}
	if err := s.checkKeys(t, reflect.TypeOf(dst)); err != nil {
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
//
// It reads the bytes itself (keyScanner) rather than through
// json.Decoder.Token, which allocated for every token: 8 % of the
// controller's CPU in a bulk load of 100,000 hosts (issue 17).
func (s *server) checkKeys(data []byte, t reflect.Type) *requestError {
	ks := keyScanner{data: data, fields: s.structFields}
	rerr, ok := ks.value(t)
	if !ok {
		return nil
	}
	return rerr
}

// unmarshalerType is json.Unmarshaler: such a value decodes itself.
var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// keyScanner walks one JSON value, checking the keys of every object in
// it against the Go type it decodes into. The path of the value being
// read is kept as segments and joined only for an error.
type keyScanner struct {
	data   []byte
	pos    int
	path   []pathSeg
	fields func(reflect.Type) map[string]reflect.Type
}

// pathSeg is one step of a path: an object's key or an array's index.
type pathSeg struct {
	key   string
	index int // -1: key
}

// field names key of the object at the current path, as errors name
// fields: "name", "ports[2].name".
func (k *keyScanner) field(key string) string {
	var b strings.Builder
	for _, sg := range k.path {
		if sg.index >= 0 {
			fmt.Fprintf(&b, "[%d]", sg.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(sg.key)
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(key)
	return b.String()
}

func (k *keyScanner) ws() {
	for k.pos < len(k.data) {
		switch k.data[k.pos] {
		case ' ', '\t', '\r', '\n':
			k.pos++
		default:
			return
		}
	}
}

// value reads one value that decodes into t (nil: any keys, still once
// each). ok is false when the input is not valid JSON as far as it got.
func (k *keyScanner) value(t reflect.Type) (rerr *requestError, ok bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType)) {
		t = nil // its own decoder reads it; its keys are still checked for duplicates
	}
	k.ws()
	if k.pos >= len(k.data) {
		return nil, false
	}
	switch k.data[k.pos] {
	case '{':
		return k.object(t)
	case '[':
		return k.array(t)
	case '"':
		_, ok := k.str()
		return nil, ok
	default:
		return nil, k.literal()
	}
}

func (k *keyScanner) object(t reflect.Type) (*requestError, bool) {
	k.pos++ // '{'
	var fields map[string]reflect.Type
	exact := false
	if t != nil && t.Kind() == reflect.Struct {
		fields, exact = k.fields(t), true
	}
	var elem reflect.Type
	if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
	}
	var seen []string // objects here have a few keys: a slice beats a map
	k.ws()
	if k.pos < len(k.data) && k.data[k.pos] == '}' {
		k.pos++
		return nil, true
	}
	for {
		k.ws()
		if k.pos >= len(k.data) || k.data[k.pos] != '"' {
			return nil, false
		}
		key, ok := k.str()
		if !ok {
			return nil, false
		}
		if slices.Contains(seen, key) {
			return badRequest(k.field(key), "given twice: give each key once"), true
		}
		seen = append(seen, key)
		sub := elem
		if exact {
			ft, ok := fields[key]
			if !ok {
				if e := caseMismatch(fields, k.field(key), key); e != nil {
					return e, true
				}
				// Unknown keys are the decoder's to name (with the
				// allowed ones); keep reading for duplicates.
			}
			sub = ft
		}
		k.ws()
		if k.pos >= len(k.data) || k.data[k.pos] != ':' {
			return nil, false
		}
		k.pos++
		if rerr, ok, last := k.member(pathSeg{key: key, index: -1}, sub, '}'); rerr != nil || !ok || last {
			return rerr, ok
		}
	}
}

// member reads one member's value (at path step seg, decoding into t)
// and what follows it: a comma, or end after the last member.
func (k *keyScanner) member(seg pathSeg, t reflect.Type, end byte) (rerr *requestError, ok, last bool) {
	k.path = append(k.path, seg)
	rerr, ok = k.value(t)
	k.path = k.path[:len(k.path)-1]
	if rerr != nil || !ok {
		return rerr, ok, true
	}
	k.ws()
	if k.pos < len(k.data) {
		switch k.data[k.pos] {
		case ',':
			k.pos++
			return nil, true, false
		case end:
			k.pos++
			return nil, true, true
		}
	}
	return nil, false, true
}

func (k *keyScanner) array(t reflect.Type) (*requestError, bool) {
	k.pos++ // '['
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	k.ws()
	if k.pos < len(k.data) && k.data[k.pos] == ']' {
		k.pos++
		return nil, true
	}
	for i := 0; ; i++ {
		if rerr, ok, last := k.member(pathSeg{index: i}, elem, ']'); rerr != nil || !ok || last {
			return rerr, ok
		}
	}
}

// str reads a string (k.pos at its opening quote) and returns it
// unescaped.
func (k *keyScanner) str() (string, bool) {
	start := k.pos
	k.pos++
	escaped := false // the slow path: escapes or non-ASCII bytes
	for k.pos < len(k.data) {
		switch c := k.data[k.pos]; {
		case c == '\\':
			escaped = true
			k.pos += 2
		case c == '"':
			k.pos++
			raw := k.data[start:k.pos]
			if !escaped {
				return string(raw[1 : len(raw)-1]), true
			}
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				return "", false
			}
			return out, true
		case c < 0x20:
			return "", false
		case c >= 0x80:
			escaped = true // not ASCII: json.Unmarshal replaces invalid UTF-8, as the decoder does
			k.pos++
		default:
			k.pos++
		}
	}
	return "", false
}

// literal skips a number, true, false or null (a number only roughly:
// the decoder checks it).
func (k *keyScanner) literal() bool {
	rest := k.data[k.pos:]
	for _, w := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(rest, []byte(w)) {
			k.pos += len(w)
			return true
		}
	}
	start := k.pos
	for k.pos < len(k.data) {
		c := k.data[k.pos]
		if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
		k.pos++
	}
	return k.pos > start
}

// structFields maps the JSON names of a struct's fields, as
// encoding/json names them, to their types; computed once per type.
func (s *server) structFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := s.fields.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := structFieldsOf(t)
	s.fields.Store(t, m)
	return m
}

// structFieldsOf is structFields, computed.
func structFieldsOf(t reflect.Type) map[string]reflect.Type {
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
				for k, v := range structFieldsOf(ft) {
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

// caseMismatch is the 400 for an unknown key that is a field's name in
// other case (nil if none is).
func caseMismatch(fields map[string]reflect.Type, field, key string) *requestError {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return badRequest(field, "unknown field; did you mean %q? (keys are case-sensitive)", name)
		}
	}
	return nil
}
