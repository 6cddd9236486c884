package topology

import (
	"encoding/json"
	"strconv"
)

// The stored and API forms of the kinds there are many of (hosts and
// route entries), written without reflection. Writers pick them by the
// concrete type, never by an interface: a type embedding Host (the API's
// HostInfo) would have AppendJSON promoted and lose its own fields. Each writes exactly what
// json.Marshal writes for the struct's tags (TestHostJSONIsMarshal,
// TestSubnetJSONIsMarshal and FuzzHostJSON compare them): field order,
// omitempty/omitzero, and json.Marshal's string escaping (HTML
// characters, invalid UTF-8 and U+2028/U+2029 included).

// AppendObjectJSON appends v's JSON when v is a kind that writes its own
// (a *Host or *Subnet: exactly what json.Marshal writes) and says whether
// it did. The store's commit and the API's lists both pick by it, by
// concrete type.
func AppendObjectJSON(b []byte, v any) ([]byte, bool) {
	switch o := v.(type) {
	case *Host:
		return o.AppendJSON(b), true
	case *Subnet:
		return o.AppendJSON(b), true
	}
	return b, false
}

// AppendJSON appends h as json.Marshal writes it.
func (h *Host) AppendJSON(b []byte) []byte {
	b = appendUintField(b, '{', "id", uint64(h.ID))
	b = appendStringField(b, "vpc", h.VPC)
	b = appendStringField(b, "name", h.Name)
	b = appendStringField(b, "vswitch", h.VSwitch)
	b = append(b, `,"ip":"`...)
	if h.IP.IsValid() {
		b = h.IP.AppendTo(b)
	}
	b = h.MAC.AppendTo(append(b, `","mac":"`...))
	b = append(b, '"')
	b = appendStringFieldOmitEmpty(b, "bridge", h.Bridge)
	b = appendStringFieldOmitEmpty(b, "ovsdb", h.OVSDB)
	b = appendStringFieldOmitEmpty(b, "chassis", h.Chassis)
	b = appendStringFieldOmitEmpty(b, "interface", h.Interface)
	if h.DPID != 0 {
		b = append(b, `,"dpid":"`...)
		b = appendHex16(b, uint64(h.DPID))
		b = append(b, '"')
	}
	if h.OFPort != 0 {
		b = appendUintField(b, ',', "ofport", uint64(h.OFPort))
	}
	if len(h.SecurityGroups) > 0 {
		b = append(b, `,"security_groups":[`...)
		for i, g := range h.SecurityGroups {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, g)
		}
		b = append(b, ']')
	}
	if h.CTZone != 0 {
		b = appendUintField(b, ',', "ct_zone", uint64(h.CTZone))
	}
	if h.ID != 0 {
		b = appendStringField(b, "aliyun_id", h.AliyunID())
	}
	return append(b, '}')
}

// AppendJSON appends s as json.Marshal writes it.
func (s *Subnet) AppendJSON(b []byte) []byte {
	b = appendUintField(b, '{', "id", uint64(s.ID))
	b = appendStringField(b, "vpc", s.VPC)
	b = appendStringField(b, "name", s.Name)
	b = append(b, `,"cidr":"`...)
	if s.CIDR.IsValid() {
		b = s.CIDR.AppendTo(b)
	}
	b = append(b, '"')
	b = appendStringField(b, "host", s.Host)
	if s.ID != 0 {
		b = appendStringField(b, "aliyun_id", s.AliyunID())
	}
	return append(b, '}')
}

// appendUintField appends sep, "key": and n.
func appendUintField(b []byte, sep byte, key string, n uint64) []byte {
	b = append(append(append(b, sep, '"'), key...), '"', ':')
	return strconv.AppendUint(b, n, 10)
}

// appendStringField appends ,"key": and v as a JSON string.
func appendStringField(b []byte, key, v string) []byte {
	b = append(append(append(b, ',', '"'), key...), '"', ':')
	return appendJSONString(b, v)
}

// appendStringFieldOmitEmpty is appendStringField unless v is empty.
func appendStringFieldOmitEmpty(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendStringField(b, key, v)
}

// appendHex16 appends n as 16 lower-case hex digits (DPID.String).
func appendHex16(b []byte, n uint64) []byte {
	const hex = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hex[n>>uint(shift)&0xf])
	}
	return b
}

// appendJSONString appends v quoted as json.Marshal quotes it: printable
// ASCII other than the characters it escapes is copied; anything else is
// left to encoding/json itself.
func appendJSONString(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(v)
			if err != nil { // cannot happen: every Go string encodes
				panic(err)
			}
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), v...), '"')
}
