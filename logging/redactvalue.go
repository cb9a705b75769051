package logging

import (
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
)

// maxDepth bounds how far the redactor walks into a value: each map,
// slice, pointer and struct on the way counts one. Below it, a part that
// could hold a string is replaced as a whole.
const maxDepth = 10

var (
	urlType           = reflect.TypeFor[url.URL]()
	urlPtrType        = reflect.TypeFor[*url.URL]()
	errorType         = reflect.TypeFor[error]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// fields is a struct rewritten with its secrets redacted: a group at the
// level of attributes, an object inside maps and slices.
type fields []slog.Attr

// anyValue redacts v, a KindAny value holding x.
func (r *redactor) anyValue(x any, depth int) (slog.Value, bool) {
	switch x := x.(type) {
	case error:
		// Handlers write an error as its text; one whose Error panics (a
		// nil pointer) they report as they do.
		if looksLikeJWT(errorText(reflect.ValueOf(x))) {
			return slog.StringValue(Redacted), true
		}
		return slog.AnyValue(x), false
	}
	rep, ok := r.walkAny(x, depth)
	if !ok {
		return slog.AnyValue(x), false
	}
	return attrValue(rep), true
}

// attrValue is the attribute value of rep, a replacement from walk.
func attrValue(rep any) slog.Value {
	if f, ok := rep.(fields); ok {
		return slog.GroupValue(f...)
	}
	return slog.AnyValue(rep)
}

// plain is rep as encoding/json and fmt take it, with fields as a map.
func plain(rep any) any {
	f, ok := rep.(fields)
	if !ok {
		return rep
	}
	m := make(map[string]any, len(f))
	for _, a := range f {
		switch a.Value.Kind() {
		case slog.KindGroup:
			m[a.Key] = plain(fields(a.Value.Group()))
		default:
			m[a.Key] = a.Value.Any()
		}
	}
	return m
}

// walkAny returns a replacement for x with its secrets redacted and true,
// or false when x holds none. The shapes services log most are handled
// without reflection, and keep their type.
func (r *redactor) walkAny(x any, depth int) (any, bool) {
	switch x := x.(type) {
	case nil:
		return nil, false
	case string:
		if looksLikeJWT(x) {
			return Redacted, true
		}
		return nil, false
	case *url.URL:
		if x == nil {
			return nil, false
		}
		return r.url(x), true
	case url.URL:
		return r.url(&x), true
	case []string:
		return r.strings(x)
	case map[string]string:
		return r.stringMap(x)
	case http.Header:
		return redactMultiMap(r, x)
	case url.Values:
		return redactMultiMap(r, x)
	case map[string][]string:
		return redactMultiMap(r, x)
	case []any:
		if depth >= maxDepth {
			return Redacted, true
		}
		var out []any
		for i, e := range x {
			if rep, ok := r.walkAny(e, depth+1); ok {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = plain(rep)
			}
		}
		return out, out != nil
	case map[string]any:
		if depth >= maxDepth {
			return Redacted, true
		}
		var out map[string]any
		for k, e := range x {
			rep, ok := any(Redacted), r.sensitive(k)
			if !ok {
				rep, ok = r.walkAny(e, depth+1)
			}
			if ok {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = plain(rep)
			}
		}
		return out, out != nil
	}
	return r.walk(reflect.ValueOf(x), depth)
}

func (r *redactor) strings(s []string) ([]string, bool) {
	var out []string
	for i, e := range s {
		if looksLikeJWT(e) {
			if out == nil {
				out = slices.Clone(s)
			}
			out[i] = Redacted
		}
	}
	return out, out != nil
}

func (r *redactor) stringMap(m map[string]string) (map[string]string, bool) {
	var out map[string]string
	for k, v := range m {
		if r.sensitive(k) || looksLikeJWT(v) {
			if out == nil {
				out = maps.Clone(m)
			}
			out[k] = Redacted
		}
	}
	return out, out != nil
}

// redactMultiMap returns a copy of m with the values of sensitive keys
// replaced by one [Redacted], and token-shaped values replaced.
func redactMultiMap[M ~map[string][]string](r *redactor, m M) (M, bool) {
	var out M
	for k, vs := range m {
		sensitive := r.sensitive(k)
		for i, v := range vs {
			if !sensitive && !looksLikeJWT(v) {
				continue
			}
			if out == nil {
				out = make(M, len(m))
				for k, vs := range m {
					out[k] = slices.Clone(vs)
				}
			}
			if sensitive {
				out[k] = []string{Redacted}
				break
			}
			out[k][i] = Redacted
		}
	}
	return out, out != nil
}

// url writes u as a string without its password, with the values of
// sensitive query and fragment parameters and anything shaped like a
// token replaced.
func (r *redactor) url(u *url.URL) string {
	c := *u
	c.RawQuery = r.query(u.RawQuery)
	frag := u.EscapedFragment()
	c.Fragment, c.RawFragment = "", ""
	s := c.Redacted() // the password as xxxxx
	if frag != "" {
		// OAuth's implicit flow returns tokens in the fragment.
		s += "#" + r.query(frag)
	}
	return scrubJWT(s)
}

// query redacts the values of the parameters of the raw query q whose
// names are sensitive or whose values look like a token. The rest stays
// as it was, in its order and encoding.
func (r *redactor) query(q string) string {
	if q == "" {
		return q
	}
	var b strings.Builder
	for {
		part, rest, more := strings.Cut(q, "&")
		k, v, hasValue := strings.Cut(part, "=")
		if hasValue && (r.sensitive(unescape(k)) || looksLikeJWT(unescape(v))) {
			part = k + "=" + Redacted
		}
		b.WriteString(part)
		if !more {
			return b.String()
		}
		b.WriteByte('&')
		q = rest
	}
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// walk is walkAny for the shapes found by reflection: pointers, structs,
// maps and slices of any type. Values reached through unexported fields
// are only inspected: their replacement is dropped with them.
func (r *redactor) walk(v reflect.Value, depth int) (any, bool) {
	if !v.IsValid() {
		return nil, false
	}
	t := v.Type()
	if !r.mayHide(t) {
		return nil, false
	}
	if depth >= maxDepth {
		return Redacted, true
	}
	if v.CanInterface() {
		switch t {
		case urlType, urlPtrType, stringsType, stringMapType, headerType, valuesType, multiMapType, anysType, anyMapType:
			return r.walkAny(v.Interface(), depth)
		}
		if t.Implements(errorType) && looksLikeJWT(errorText(v)) {
			return Redacted, true
		}
	}
	switch v.Kind() {
	case reflect.String:
		if looksLikeJWT(v.String()) {
			return Redacted, true
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return r.walk(v.Elem(), depth+1)
		}
	case reflect.Struct:
		return r.walkStruct(v, depth)
	case reflect.Map:
		return r.walkMap(v, depth)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			// JSON writes bytes in base64, text as a string.
			if looksLikeJWT(string(v.Bytes())) {
				return Redacted, true
			}
			return nil, false
		}
		return r.walkList(v, depth)
	case reflect.Array:
		return r.walkList(v, depth)
	}
	return nil, false
}

var (
	stringsType   = reflect.TypeFor[[]string]()
	stringMapType = reflect.TypeFor[map[string]string]()
	headerType    = reflect.TypeFor[http.Header]()
	valuesType    = reflect.TypeFor[url.Values]()
	multiMapType  = reflect.TypeFor[map[string][]string]()
	anysType      = reflect.TypeFor[[]any]()
	anyMapType    = reflect.TypeFor[map[string]any]()
)

// errorText is the text of v, an error, or "" when Error panics (a nil
// pointer behind a value method, say).
func errorText(v reflect.Value) (s string) {
	defer func() {
		if recover() != nil {
			s = ""
		}
	}()
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return ""
	}
	return v.Interface().(error).Error()
}

// interfaceOf is v as an interface, or nil when v came through an
// unexported field (its replacement is dropped anyway).
func interfaceOf(v reflect.Value) any {
	if !v.IsValid() || !v.CanInterface() {
		return nil
	}
	return v.Interface()
}

func (r *redactor) walkList(v reflect.Value, depth int) (any, bool) {
	if !r.mayHide(v.Type().Elem()) {
		return nil, false
	}
	var out []any
	for i := range v.Len() {
		rep, ok := r.walk(v.Index(i), depth+1)
		if !ok {
			continue
		}
		if out == nil {
			out = make([]any, v.Len())
			for j := range out {
				out[j] = interfaceOf(v.Index(j))
			}
		}
		out[i] = plain(rep)
	}
	return out, out != nil
}

func (r *redactor) walkMap(v reflect.Value, depth int) (any, bool) {
	t := v.Type()
	byKey := t.Key().Kind() == reflect.String
	if !byKey && !r.mayHide(t.Elem()) {
		return nil, false
	}
	var reps map[string]any
	for it := v.MapRange(); it.Next(); {
		k := it.Key()
		var rep any = Redacted
		ok := byKey && r.sensitive(k.String())
		if !ok {
			rep, ok = r.walk(it.Value(), depth+1)
		}
		if ok {
			if reps == nil {
				reps = make(map[string]any)
			}
			reps[mapKey(k)] = plain(rep)
		}
	}
	if reps == nil {
		return nil, false
	}
	out := make(map[string]any, v.Len())
	for it := v.MapRange(); it.Next(); {
		out[mapKey(it.Key())] = interfaceOf(it.Value())
	}
	maps.Copy(out, reps)
	return out, true
}

// mapKey writes a map key as encoding/json does.
func mapKey(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return k.String()
	}
	if k.CanInterface() {
		if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
			if b, err := tm.MarshalText(); err == nil {
				return string(b)
			}
		}
	}
	return fmt.Sprint(interfaceOf(k))
}

// walkStruct rewrites a struct holding a secret as its fields, the way
// encoding/json writes them, with the secrets redacted. Unexported fields
// and those tagged json:"-" are checked too (fmt prints them) and left out.
func (r *redactor) walkStruct(v reflect.Value, depth int) (any, bool) {
	plan := r.structPlan(v.Type())
	changed := false
	for _, f := range plan.hidden {
		fv, ok := fieldByIndex(v, f.index)
		if !ok {
			continue
		}
		if f.sensitive && !fv.IsZero() {
			changed = true
			break
		}
		if _, ok := r.walk(fv, depth+1); ok {
			changed = true
			break
		}
	}
	var reps []any // by index into plan.shown; nil: unchanged
	for i, f := range plan.shown {
		fv, ok := fieldByIndex(v, f.index)
		if !ok {
			continue
		}
		var rep any = Redacted
		ok = f.sensitive
		if !ok {
			rep, ok = r.walk(fv, depth+1)
		}
		if ok {
			if reps == nil {
				reps = make([]any, len(plan.shown))
			}
			reps[i], changed = rep, true
		}
	}
	if !changed {
		return nil, false
	}
	out := make(fields, 0, len(plan.shown))
	for i, f := range plan.shown {
		fv, ok := fieldByIndex(v, f.index)
		if !ok || f.omitEmpty && isEmptyValue(fv) || f.omitZero && isZero(fv) {
			continue
		}
		if reps != nil && reps[i] != nil {
			out = append(out, slog.Attr{Key: f.name, Value: attrValue(reps[i])})
			continue
		}
		val := slog.AnyValue(fv.Interface())
		if val.Kind() == slog.KindLogValuer {
			// In a group the next handler would call LogValue itself.
			val, _ = r.value(val, depth+1)
		}
		out = append(out, slog.Attr{Key: f.name, Value: val})
	}
	return out, true
}

// fieldByIndex is v.FieldByIndex, false through a nil embedded pointer.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

// isEmptyValue is encoding/json's test for omitempty.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// isZero is encoding/json's test for omitzero.
func isZero(v reflect.Value) bool {
	if z, ok := interfaceOf(v).(interface{ IsZero() bool }); ok {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			return true
		}
		return z.IsZero()
	}
	return v.IsZero()
}

// structPlan is how a struct type is written and checked.
type structPlan struct {
	shown  []fieldPlan // as encoding/json writes them, in order
	hidden []fieldPlan // unexported or json:"-"
}

type fieldPlan struct {
	index               []int
	name                string // the JSON name
	sensitive           bool   // by its Go or its JSON name
	omitEmpty, omitZero bool
	depth               int  // of embedding
	tagged              bool // the name comes from a tag
}

func (r *redactor) structPlan(t reflect.Type) *structPlan {
	if p, ok := r.plans.Load(t); ok {
		return p.(*structPlan)
	}
	p := r.newStructPlan(t)
	r.plans.Store(t, p)
	return p
}

// newStructPlan follows encoding/json's typeFields: the exported fields of
// embedded structs are promoted unless tagged with a name, and of fields
// with one name the shallowest wins, or the tagged one of the shallowest,
// or none.
func (r *redactor) newStructPlan(t reflect.Type) *structPlan {
	type embedded struct {
		t     reflect.Type
		index []int
	}
	p := new(structPlan)
	var all []fieldPlan
	visited := map[reflect.Type]bool{}
	current := []embedded{{t: t}}
	for depth := 0; len(current) > 0; depth++ {
		var next []embedded
		for _, e := range current {
			if visited[e.t] {
				continue
			}
			visited[e.t] = true
			for i := range e.t.NumField() {
				sf := e.t.Field(i)
				index := append(slices.Clip(e.index), i)
				tag := sf.Tag.Get("json")
				name, opts, _ := strings.Cut(tag, ",")
				hidden := fieldPlan{index: index, sensitive: r.sensitive(sf.Name) || r.sensitive(name)}
				if sf.Anonymous {
					ft := sf.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						p.hidden = append(p.hidden, hidden)
						continue
					}
					if name == "" && tag != "-" && ft.Kind() == reflect.Struct {
						next = append(next, embedded{ft, index})
						continue
					}
				} else if !sf.IsExported() {
					p.hidden = append(p.hidden, hidden)
					continue
				}
				if tag == "-" {
					p.hidden = append(p.hidden, hidden)
					continue
				}
				f := fieldPlan{index: index, name: name, depth: depth, tagged: name != ""}
				if name == "" {
					f.name = sf.Name
				}
				f.sensitive = hidden.sensitive
				for opt := range strings.SplitSeq(opts, ",") {
					f.omitEmpty = f.omitEmpty || opt == "omitempty"
					f.omitZero = f.omitZero || opt == "omitzero"
				}
				all = append(all, f)
			}
		}
		current = next
	}
	byName := map[string][]fieldPlan{}
	for _, f := range all {
		byName[f.name] = append(byName[f.name], f)
	}
	for _, f := range all {
		if dominant(byName[f.name], f) {
			p.shown = append(p.shown, f)
		} else {
			p.hidden = append(p.hidden, f)
		}
	}
	slices.SortFunc(p.shown, func(a, b fieldPlan) int { return slices.Compare(a.index, b.index) })
	return p
}

// dominant reports whether f is the field written for its name among
// same, all the fields of that name.
func dominant(same []fieldPlan, f fieldPlan) bool {
	if len(same) == 1 {
		return true
	}
	var top []fieldPlan
	for _, g := range same {
		if len(top) == 0 || g.depth < top[0].depth {
			top = []fieldPlan{g}
		} else if g.depth == top[0].depth {
			top = append(top, g)
		}
	}
	if len(top) > 1 {
		var tagged []fieldPlan
		for _, g := range top {
			if g.tagged {
				tagged = append(tagged, g)
			}
		}
		top = tagged
	}
	return len(top) == 1 && slices.Equal(top[0].index, f.index)
}

// mayHide reports whether a value of type t can hold something to redact:
// a string, an error's text, a URL, a field or map key with a sensitive
// name. A type that marshals itself (encoding/json's Marshaler,
// encoding.TextMarshaler) decides what it writes and is not walked.
func (r *redactor) mayHide(t reflect.Type) bool {
	if b, ok := r.types.Load(t); ok {
		return b.(bool)
	}
	b := r.newMayHide(t, map[reflect.Type]bool{})
	r.types.Store(t, b)
	return b
}

func (r *redactor) newMayHide(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false // decided where the cycle started
	}
	seen[t] = true
	switch {
	case t == urlType || t == urlPtrType || t.Implements(errorType):
		return true
	case t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType):
		return false
	}
	switch t.Kind() {
	case reflect.String, reflect.Interface:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8 || r.newMayHide(t.Elem(), seen)
	case reflect.Pointer, reflect.Array:
		return r.newMayHide(t.Elem(), seen)
	case reflect.Map:
		return t.Key().Kind() == reflect.String || r.newMayHide(t.Key(), seen) || r.newMayHide(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if r.sensitive(sf.Name) || r.sensitive(name) || r.newMayHide(sf.Type, seen) {
				return true
			}
		}
	}
	return false
}
