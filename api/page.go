package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vpcflow/vpcflow/topology"
)

// MaxPageLimit is the largest ?limit of a list.
const MaxPageLimit = 10000

// NextPageHeader carries the token of a list's next page; the last page
// has none.
const NextPageHeader = "X-Next-Page-Token"

// TotalCountHeader carries how many items of a list match its filters,
// every page together (the whole list without filters).
const TotalCountHeader = "X-Total-Count"

// MaxQueryLen is the longest ?q: no field it is looked for in is longer
// (names stop at 63 characters, addresses and CIDRs before).
const MaxQueryLen = topology.MaxNameLen

// tokenPrefix versions the page token's format.
const tokenPrefix = "k1:"

// pageQuery is a list request's ?limit and ?page_token.
type pageQuery struct {
	limit int    // 0: everything
	after string // the key of the last item of the previous page; "": from the start
}

// parsePage reads ?limit=N and ?page_token=T.
func parsePage(r *http.Request) (pageQuery, *requestError) {
	var p pageQuery
	q := r.URL.Query()
	if vals, ok := q["limit"]; ok {
		if len(vals) != 1 {
			return p, badRequest("limit", "given %d times; give it once", len(vals))
		}
		n, err := strconv.Atoi(vals[0])
		if err != nil || n < 1 || n > MaxPageLimit {
			return p, badRequest("limit", "%s: want a whole number from 1 to %d", quote(vals[0]), MaxPageLimit)
		}
		p.limit = n
	}
	if vals, ok := q["page_token"]; ok {
		if len(vals) != 1 {
			return p, badRequest("page_token", "given %d times; give it once", len(vals))
		}
		key, err := decodePageToken(vals[0])
		if err != nil {
			return p, badRequest("page_token", "%s is not a page token of this API (take it from the %s header of the previous page)", quote(vals[0]), NextPageHeader)
		}
		p.after = key
	}
	return p, nil
}

// listFilter is what a list's filter parameters ask for. A list takes
// those its resource names (resource.filters) and refuses the others; the
// filters apply before paging, so pages and their tokens are those of
// the filtered list.
type listFilter struct {
	// q (?q) is text to find in an item's name or other fields (hosts:
	// IP, MAC; route entries: CIDR, next hop), ignoring ASCII case; in
	// lower case; "": no text filter.
	q string
	// vswitch (?vswitch, hosts) keeps a vSwitch's hosts.
	vswitch string
	// host (?host, route entries) keeps those whose next hop is the host.
	host string
}

// parseList reads a list's ?limit, ?page_token and the filters in takes
// ("q", "vswitch", "host").
func parseList(r *http.Request, takes []string) (pageQuery, listFilter, *requestError) {
	var f listFilter
	p, rerr := parsePage(r)
	if rerr != nil {
		return p, f, rerr
	}
	query := r.URL.Query()
	for _, name := range []string{"q", "vswitch", "host"} {
		vals, ok := query[name]
		if !ok {
			continue
		}
		if !slices.Contains(takes, name) {
			return p, f, badRequest(name, "this list cannot be filtered by %s (hosts take vswitch and q, route entries host and q)", name)
		}
		if len(vals) != 1 {
			return p, f, badRequest(name, "given %d times; give it once", len(vals))
		}
		val := vals[0]
		switch name {
		case "q":
			if val == "" {
				return p, f, badRequest(name, "empty: give the text to look for, or leave q out")
			}
			if len(val) > MaxQueryLen {
				return p, f, badRequest(name, "%s is %d bytes long: at most %d (nothing longer can match)", quote(val), len(val), MaxQueryLen)
			}
			f.q = lowerASCII(val)
		default:
			if err := topology.ValidateName(name, val); err != nil {
				return p, f, badRequest(name, "%s", err.Msg)
			}
			if name == "vswitch" {
				f.vswitch = val
			} else {
				f.host = val
			}
		}
	}
	return p, f, nil
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// textMatch looks for a list's ?q in an item's fields without
// allocating: fields that are not strings are written into buf.
type textMatch struct {
	q   string // lower case
	buf []byte
}

// in reports whether s contains the text, ignoring ASCII case.
func (m *textMatch) in(s string) bool { return containsFold(s, m.q) }

// inBytes reports whether b (written into m.buf) contains the text, and
// keeps b's array for the next field.
func (m *textMatch) inBytes(b []byte) bool {
	m.buf = b[:0]
	return containsFold(b, m.q)
}

// containsFold reports whether s contains lower (in lower case), ignoring
// ASCII case.
func containsFold[S string | []byte](s S, lower string) bool {
	n := len(lower)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// matcher is the filter of ?q for items whose fields are looked in by
// fields; nil (everything matches) without ?q.
func matcher[T any](f listFilter, fields func(m *textMatch, x *T) bool) func(*T) bool {
	if f.q == "" {
		return nil
	}
	m := &textMatch{q: f.q, buf: make([]byte, 0, 64)}
	return func(x *T) bool { return fields(m, x) }
}

func encodePageToken(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + key))
}

func decodePageToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", err
	}
	key, ok := strings.CutPrefix(string(b), tokenPrefix)
	if !ok || key == "" || !utf8.ValidString(key) {
		return "", fmt.Errorf("bad page token")
	}
	return key, nil
}

// listPage is one page of a list.
type listPage[T any] struct {
	// items are the page's, in key order; they point at the listed items.
	items []*T
	// total counts the items that match, every page together.
	total int
	// last is the key of the page's last item when more items follow
	// (the next page's token); "" on the last page.
	last string
}

// pageHeap picks a list's page from items offered one at a time (each
// once, in any order): the first limit by key after the page token
// (every one without a limit). With a limit it holds at most limit items,
// a max-heap by key, so 50 out of 100,000 cost neither a copy nor a sort
// of the others; it counts every item offered (X-Total-Count).
type pageHeap[E any] struct {
	p     pageQuery
	total int // items offered
	past  int // of those, after the page token
	items []keyedItem[E]
}

type keyedItem[E any] struct {
	key string
	v   E
}

// offer gives the heap one item and its key (unique within the list).
func (h *pageHeap[E]) offer(key string, v E) {
	h.total++
	if h.p.after != "" && key <= h.p.after {
		return
	}
	h.past++
	top := h.items
	switch {
	case h.p.limit == 0:
		h.items = append(top, keyedItem[E]{key, v})
	case len(top) < h.p.limit:
		top = append(top, keyedItem[E]{key, v})
		for i := len(top) - 1; i > 0 && top[i].key > top[(i-1)/2].key; i = (i - 1) / 2 {
			top[i], top[(i-1)/2] = top[(i-1)/2], top[i]
		}
		h.items = top
	case key < top[0].key:
		top[0] = keyedItem[E]{key, v}
		for i := 0; ; {
			l, r, m := 2*i+1, 2*i+2, i
			if l < len(top) && top[l].key > top[m].key {
				m = l
			}
			if r < len(top) && top[r].key > top[m].key {
				m = r
			}
			if m == i {
				break
			}
			top[i], top[m] = top[m], top[i]
			i = m
		}
	}
}

// page is the items picked, in key order, and the key of the last one
// when more follow (the next page's token; "" on the last page).
func (h *pageHeap[E]) page() (items []E, last string) {
	slices.SortFunc(h.items, func(a, b keyedItem[E]) int { return strings.Compare(a.key, b.key) })
	items = make([]E, len(h.items))
	for i := range h.items {
		items[i] = h.items[i].v
	}
	if h.p.limit > 0 && h.past > h.p.limit {
		last = h.items[len(h.items)-1].key
	}
	return items, last
}

// selectPage finds the page p asks for among the items each visits,
// keeping only those match accepts (nil: every one); key must not
// allocate (a host's name). The page points at the items: copy them
// before they may change (before the store's read lock is released).
func selectPage[T any](p pageQuery, each func(yield func(*T) bool), match func(*T) bool, key func(*T) string) listPage[T] {
	h := pageHeap[*T]{p: p}
	each(func(x *T) bool {
		if match == nil || match(x) {
			h.offer(key(x), x)
		}
		return true
	})
	items, last := h.page()
	return listPage[T]{items: items, total: h.total, last: last}
}

// setPageHeaders sets a list page's headers: the total count and, when
// more follow, the next page's token and link.
func setPageHeaders(w http.ResponseWriter, r *http.Request, total int, last string) {
	w.Header().Set(TotalCountHeader, strconv.Itoa(total))
	if last == "" {
		return
	}
	tok := encodePageToken(last)
	w.Header().Set(NextPageHeader, tok)
	q := r.URL.Query()
	q.Set("page_token", tok)
	next := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	w.Header().Set("Link", "<"+next.String()+`>; rel="next"`)
}

// copyPage copies a page's items (with keep; nil: by value) into a
// list, never nil.
func copyPage[T any](pg listPage[T], keep func(*T) T) []T {
	out := make([]T, len(pg.items))
	for i, x := range pg.items {
		if keep != nil {
			out[i] = keep(x)
		} else {
			out[i] = *x
		}
	}
	return out
}

// paginate sorts items by key (keys are unique), keeps those after
// p.after and at most p.limit of them, and sets the page's headers. The
// order is stable across pages: objects created or deleted between two
// pages neither repeat nor shift what follows.
func paginate[T any](w http.ResponseWriter, r *http.Request, p pageQuery, items []T, key func(*T) string) []T {
	type keyedItem struct {
		i   int
		key string
	}
	ks := make([]keyedItem, len(items))
	for i := range items {
		ks[i] = keyedItem{i, key(&items[i])}
	}
	pg := selectPage(p, func(yield func(*keyedItem) bool) {
		for i := range ks {
			if !yield(&ks[i]) {
				return
			}
		}
	}, nil, func(k *keyedItem) string { return k.key })
	setPageHeaders(w, r, pg.total, pg.last)
	out := make([]T, 0, len(pg.items))
	for _, k := range pg.items {
		out = append(out, items[k.i])
	}
	return out
}

// keyed is a topology object (Key is unique within its list).
type keyed interface{ Key() string }

// paginateObjects pages a slice of topology objects (any, as a resource's
// list returns it) by their Key.
func paginateObjects(w http.ResponseWriter, r *http.Request, p pageQuery, list any) (any, error) {
	v := reflect.ValueOf(list)
	if v.Kind() != reflect.Slice {
		return nil, fmt.Errorf("list is a %s, not a slice", v.Kind())
	}
	items := make([]reflect.Value, v.Len())
	for i := range items {
		items[i] = v.Index(i)
	}
	var bad error
	page := paginate(w, r, p, items, func(x *reflect.Value) string {
		var k keyed
		var ok bool
		if x.CanAddr() {
			k, ok = x.Addr().Interface().(keyed)
		}
		if !ok {
			k, ok = x.Interface().(keyed)
		}
		if !ok {
			bad = fmt.Errorf("%s has no Key", x.Type())
			return ""
		}
		return k.Key()
	})
	if bad != nil {
		return nil, bad
	}
	out := reflect.MakeSlice(v.Type(), 0, len(page))
	for _, x := range page {
		out = reflect.Append(out, x)
	}
	return out.Interface(), nil
}
