package aliyunapi

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
)

// params are a request's parameters: the query and the form body merged.
type params map[string]string

func (p params) str(name string) string { return p[name] }

func (p params) required(name string) (string, *Error) {
	v := p[name]
	if v == "" {
		return "", errMissing(name)
	}
	return v, nil
}

// int32Param reads an optional integer in [min, max]; def when absent.
func (p params) int32Param(name string, def, min, max int32) (int32, *Error) {
	v, ok := p[name]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || int32(n) < min || int32(n) > max {
		return 0, errInvalid(name, "%q is not an integer from %d to %d", v, min, max)
	}
	return int32(n), nil
}

// boolParam reads an optional "true"/"false".
func (p params) boolParam(name string) (value, given bool, err *Error) {
	v, ok := p[name]
	if !ok || v == "" {
		return false, false, nil
	}
	switch strings.ToLower(v) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, false, errInvalid(name, "%q is not true or false", v)
}

// list reads an optional list given as "a,b,c" or as a JSON array
// (["a","b"]), as the Describe actions accept IDs; at most max items.
func (p params) list(name string, max int) ([]string, *Error) {
	v := strings.TrimSpace(p[name])
	if v == "" {
		return nil, nil
	}
	var out []string
	if strings.HasPrefix(v, "[") {
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			return nil, errInvalid(name, "%q is not a JSON array of strings", v)
		}
	} else {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	if len(out) > max {
		return nil, errInvalid(name, "at most %d values, got %d", max, len(out))
	}
	return out, nil
}

// parseCIDR reads an IPv4 destination or vSwitch/VPC block: "a.b.c.d/n"
// (host bits cleared, as Aliyun does) or a bare address (/32).
func parseCIDR(code, name, v string, bareIsHost bool) (netip.Prefix, *Error) {
	if v == "" {
		return netip.Prefix{}, errMissing(name)
	}
	if !strings.Contains(v, "/") && bareIsHost {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			return netip.Prefix{}, newError(400, code, "Specified CIDR block %q is not valid: want an IPv4 CIDR such as 192.168.0.0/24.", v)
		}
		return netip.PrefixFrom(a, 32), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, newError(400, code, "Specified CIDR block %q is not valid: want an IPv4 CIDR such as 192.168.0.0/24.", v)
	}
	return p.Masked(), nil
}

// paging is a page of a list: PageNumber/PageSize.
type paging struct {
	number, size int32
}

// pageParams reads PageNumber (default 1) and PageSize (default 10, at
// most max).
func (p params) pageParams(max int32) (paging, *Error) {
	n, err := p.int32Param("PageNumber", 1, 1, 1<<30)
	if err != nil {
		return paging{}, err
	}
	s, err := p.int32Param("PageSize", 10, 1, max)
	if err != nil {
		return paging{}, err
	}
	return paging{number: n, size: s}, nil
}

// page returns the items of the page; past the end it is empty.
func page[T any](items []T, pg paging) []T {
	start := int64(pg.number-1) * int64(pg.size)
	if start >= int64(len(items)) {
		return []T{}
	}
	end := min(start+int64(pg.size), int64(len(items)))
	return items[start:end]
}

// tokenPage reads NextToken (an offset this server handed out) and the
// page size parameter name (MaxResult or MaxResults, default def, at most
// max), and returns the items of the page and the next token, "" at the
// end.
func tokenPage[T any](p params, items []T, sizeName string, def, max int32) ([]T, string, *Error) {
	size, err := p.int32Param(sizeName, def, 1, max)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if tok := p.str("NextToken"); tok != "" {
		n, perr := strconv.Atoi(tok)
		if perr != nil || n <= 0 || n > len(items) || strconv.Itoa(n) != tok {
			return nil, "", newError(400, "InvalidNextToken", "The specified NextToken %q is not valid: use the NextToken of the previous answer.", tok)
		}
		start = n
	}
	end := min(start+int(size), len(items))
	next := ""
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	return items[start:end], next, nil
}
