package mgmtui

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// object is one item of an API listing, as it is rendered to JSON.
type object = map[string]any

// maxPageSize is the largest page RabbitMQ's API serves.
const maxPageSize = 500

// listQuery is a listing's query parameters, RabbitMQ's names: page,
// page_size, name, use_regex, sort, sort_reverse, columns.
type listQuery struct {
	paged       bool
	page, size  int
	name        string
	nameRegexp  *regexp.Regexp
	sortKey     string
	sortReverse bool
	columns     []string
	total       int // items before filtering, for total_count
}

func parseListQuery(r *http.Request) (listQuery, error) {
	v := r.URL.Query()
	q := listQuery{page: 1, size: 100, sortKey: v.Get("sort"), name: v.Get("name")}
	q.sortReverse = v.Get("sort_reverse") == "true"
	if c := v.Get("columns"); c != "" {
		q.columns = strings.Split(c, ",")
	}
	if p := v.Get("page"); p != "" {
		q.paged = true
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return q, badRequest("page must be a positive integer")
		}
		q.page = n
	}
	if s := v.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return q, badRequest("page_size must be a positive integer")
		}
		if n > maxPageSize {
			return q, badRequest("Page size %d is too large, maximum is %d", n, maxPageSize)
		}
		q.size = n
	}
	if q.name != "" && v.Get("use_regex") == "true" {
		re, err := regexp.Compile(q.name)
		if err != nil {
			return q, badRequest("invalid regular expression %q: %v", q.name, err)
		}
		q.nameRegexp = re
	}
	return q, nil
}

// matches applies the name filter: a regular expression with use_regex,
// else a case-insensitive substring.
func (q *listQuery) matches(name string) bool {
	switch {
	case q.name == "":
		return true
	case q.nameRegexp != nil:
		return q.nameRegexp.MatchString(name)
	}
	return strings.Contains(strings.ToLower(name), strings.ToLower(q.name))
}

// pagedList is the envelope of a paged listing.
type pagedList struct {
	FilteredCount int      `json:"filtered_count"`
	ItemCount     int      `json:"item_count"`
	Items         []object `json:"items"`
	Page          int      `json:"page"`
	PageCount     int      `json:"page_count"`
	PageSize      int      `json:"page_size"`
	TotalCount    int      `json:"total_count"`
}

// writeList filters, sorts, pages and prunes items and writes them: a
// plain array, or the paged envelope when the request asked for a page.
func writeList(w http.ResponseWriter, r *http.Request, items []object) {
	q, err := parseListQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	q.total = len(items)
	writeQueried(w, q, items)
}

// writeQueried writes items under an already parsed query whose total
// (the count before filtering) is set.
func writeQueried(w http.ResponseWriter, q listQuery, items []object) {
	if q.name != "" {
		kept := items[:0:0]
		for _, it := range items {
			if name, _ := it["name"].(string); q.matches(name) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	sortObjects(items, q.sortKey, q.sortReverse)
	if !q.paged {
		writeJSON(w, http.StatusOK, pruneAll(items, q.columns))
		return
	}
	writePage(w, q, len(items), func(start, end int) []object { return items[start:end] })
}

// writePage writes one page of n filtered items in the paged envelope;
// render returns the items in [start, end).
func writePage(w http.ResponseWriter, q listQuery, n int, render func(start, end int) []object) {
	pageCount := (n + q.size - 1) / q.size
	if q.page > pageCount && q.page > 1 {
		writeError(w, badRequest("page out of range"))
		return
	}
	start := min((q.page-1)*q.size, n)
	end := min(start+q.size, n)
	page := pruneAll(render(start, end), q.columns)
	writeJSON(w, http.StatusOK, pagedList{
		FilteredCount: n, ItemCount: len(page), Items: page, Page: q.page,
		PageCount: pageCount, PageSize: q.size, TotalCount: q.total,
	})
}

// sortObjects sorts by a dotted field path (numbers numerically, others as
// text), by name when no key is given; a stable sort keeps the listing's
// own order among equals.
func sortObjects(items []object, key string, reverse bool) {
	if key == "" {
		if reverse {
			for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
				items[i], items[j] = items[j], items[i]
			}
		}
		return
	}
	path := strings.Split(key, ".")
	sort.SliceStable(items, func(i, j int) bool {
		less := lessValue(lookup(items[i], path), lookup(items[j], path))
		if reverse {
			return lessValue(lookup(items[j], path), lookup(items[i], path))
		}
		return less
	})
}

func lookup(o object, path []string) any {
	var v any = o
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func lessValue(a, b any) bool {
	fa, aNum := number(a)
	fb, bNum := number(b)
	if aNum && bNum {
		return fa < fb
	}
	if aNum != bNum {
		return bNum // missing or text sorts before numbers
	}
	return fmt.Sprint(a) < fmt.Sprint(b)
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// pruneAll keeps only the named columns (dotted paths) of each item.
func pruneAll(items []object, columns []string) []object {
	if items == nil {
		items = []object{}
	}
	if len(columns) == 0 {
		return items
	}
	out := make([]object, len(items))
	for i, it := range items {
		out[i] = prune(it, columns)
	}
	return out
}

func prune(o object, columns []string) object {
	out := object{}
	for _, c := range columns {
		path := strings.Split(c, ".")
		v := lookup(o, path)
		if v == nil {
			if _, ok := o[path[0]]; !ok {
				continue
			}
		}
		dst := out
		for _, p := range path[:len(path)-1] {
			next, ok := dst[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				dst[p] = next
			}
			dst = next
		}
		dst[path[len(path)-1]] = v
	}
	return out
}
