package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxPageLimit is the largest ?limit of a list.
const MaxPageLimit = 10000

// NextPageHeader carries the token of a list's next page; the last page
// has none.
const NextPageHeader = "X-Next-Page-Token"

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

// paginate sorts items by key (keys are unique), keeps those after
// p.after and at most p.limit of them, and sets the next page's headers
// when more follow. The order is stable across pages: objects created or
// deleted between two pages neither repeat nor shift what follows.
func paginate[T any](w http.ResponseWriter, r *http.Request, p pageQuery, items []T, key func(*T) string) []T {
	keys := make([]string, len(items))
	idx := make([]int, len(items))
	for i := range items {
		keys[i] = key(&items[i])
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	start := 0
	if p.after != "" {
		start = sort.Search(len(idx), func(i int) bool { return keys[idx[i]] > p.after })
	}
	end := len(idx)
	if p.limit > 0 && start+p.limit < end {
		end = start + p.limit
		tok := encodePageToken(keys[idx[end-1]])
		w.Header().Set(NextPageHeader, tok)
		q := r.URL.Query()
		q.Set("page_token", tok)
		next := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		w.Header().Set("Link", "<"+next.String()+`>; rel="next"`)
	}
	out := make([]T, 0, end-start)
	for _, i := range idx[start:end] {
		out = append(out, items[i])
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
