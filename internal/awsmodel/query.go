package awsmodel

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The AWS Query protocol (ELBv2, CloudWatch, STS) carries a request as a
// form: Action=<Operation>&Version=<date>&<members>, where a member's key is
// its path in the input, the way botocore and the Go SDK flatten it:
//
//	Name=x                         a scalar
//	Matcher.HttpCode=200           a member of a nested structure
//	Names.member.1=a&Names.member.2=b   a list (1-based); Names= is an empty list
//	Tags.member.1.Key=k            a list of structures
//	Params.entry.1.key=k&Params.entry.1.value=v   a map
//
// Timestamps are ISO 8601, booleans true/false, blobs base64. The generated
// input structs name their members in their json tags, which are also the
// Query names (the model's locationName where it has one). The elbv2 model
// has no flattened lists or maps and no renamed list members or map keys;
// the generator refuses a Query model that has them.

// CallQuery is Call for the AWS Query protocol: it decodes form into a new
// I with DecodeQuery, validates it, and calls fn. It is the body of every
// case in a generated DispatchQuery.
func CallQuery[I any, O any, PI interface {
	*I
	Validatable
}](ctx context.Context, form url.Values, fn func(context.Context, *I) (*O, error)) (any, error) {
	root := parseQueryForm(form)
	decode := func(in any) error { return decodeQueryTree(root, in) }
	present := func(vs []Violation) []Violation {
		return keepPresent(vs, func(field string) bool { return root.lookup(field) != nil })
	}
	return call[I, O, PI](ctx, decode, present, fn)
}

// DecodeQuery reads the parameters of an AWS Query request into v, a pointer
// to a generated input struct. Action, Version, the presigned-URL parameters
// and any other key that names no member are ignored, as AWS does. A value
// that does not parse as its member's type fails with a *ValidationError
// naming the member.
func DecodeQuery(form url.Values, v any) error {
	return decodeQueryTree(parseQueryForm(form), v)
}

// queryNode is one dotted path segment of a Query form: the value given for
// the path up to here (if any), and the segments that follow it.
type queryNode struct {
	value string
	set   bool
	kids  map[string]*queryNode
}

// parseQueryForm arranges the form's keys into a tree by their dotted path.
// A key given twice keeps its first value, as url.Values.Get does.
func parseQueryForm(form url.Values) *queryNode {
	root := &queryNode{}
	for key, values := range form {
		if len(values) == 0 {
			continue
		}
		n := root
		for seg := range strings.SplitSeq(key, ".") {
			next := n.kids[seg]
			if next == nil {
				if n.kids == nil {
					n.kids = map[string]*queryNode{}
				}
				next = &queryNode{}
				n.kids[seg] = next
			}
			n = next
		}
		n.value, n.set = values[0], true
	}
	return root
}

// indexed returns the children of n whose names are list or map indexes
// (1, 2, …), in index order, and the first child name that is not one.
func (n *queryNode) indexed() (items []*queryNode, bad string) {
	if n == nil {
		return nil, ""
	}
	type item struct {
		i int
		n *queryNode
	}
	all := make([]item, 0, len(n.kids))
	for name, kid := range n.kids {
		i, err := strconv.Atoi(name)
		if err != nil || i < 1 || strconv.Itoa(i) != name {
			if bad == "" || name < bad {
				bad = name
			}
			continue
		}
		all = append(all, item{i, kid})
	}
	sort.Slice(all, func(a, b int) bool { return all[a].i < all[b].i })
	items = make([]*queryNode, len(all))
	for k, it := range all {
		items[k] = it.n
	}
	return items, bad
}

// lookup finds the node of the member at path, named as the Validator names
// it (a.b[0].c, m["k"]), or nil when the request does not carry it.
func (n *queryNode) lookup(path string) *queryNode {
	walked, _ := walkField(path, func(st fieldStep) bool {
		switch st.kind {
		case stepKey:
			entries, _ := n.kids["entry"].indexed()
			var found *queryNode
			for _, e := range entries {
				if key := e.kids["key"]; key != nil && key.set && key.value == st.key {
					found = e.kids["value"]
					break
				}
			}
			n = found
		case stepIndex:
			members, _ := n.kids["member"].indexed()
			if st.index < 0 || st.index >= len(members) {
				return false
			}
			n = members[st.index]
		default:
			n = n.kids[st.member]
		}
		return n != nil
	})
	if !walked || n == nil || (!n.set && len(n.kids) == 0) {
		return nil
	}
	return n
}

// decodeQueryTree fills v (a pointer to a struct) from root.
func decodeQueryTree(root *queryNode, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return &SerializationError{Detail: "awsmodel: DecodeQuery needs a pointer to a struct"}
	}
	return decodeQueryStruct(root, rv.Elem(), "")
}

func decodeQueryStruct(n *queryNode, v reflect.Value, path string) error {
	for _, f := range wireFields(v.Type()) {
		kid := n.kids[f.name]
		if kid == nil || (!kid.set && len(kid.kids) == 0) {
			continue
		}
		if err := decodeQueryValue(kid, v.Field(f.index), joinPath(path, f.name)); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(path, member string) string {
	if path == "" {
		return member
	}
	return path + "." + member
}

var (
	timeType     = reflect.TypeFor[Time]()
	documentType = reflect.TypeFor[Document]()
)

// decodeQueryValue decodes node n into v, the member at path.
func decodeQueryValue(n *queryNode, v reflect.Value, path string) error {
	t := v.Type()
	switch {
	case t == timeType:
		tm, err := time.Parse(time.RFC3339Nano, n.value)
		if err != nil {
			return queryTypeError(path, n.value, "Member must be an ISO 8601 timestamp (2006-01-02T15:04:05Z)")
		}
		v.Set(reflect.ValueOf(Time{tm.UTC()}))
		return nil
	case t == documentType:
		raw, _ := json.Marshal(n.value)
		v.SetBytes(raw)
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Struct && t.Elem() != timeType {
			if len(n.kids) == 0 {
				return nil // a structure with no members given is absent
			}
		} else if !n.set {
			return nil // a scalar with only sub-keys is not given
		}
		p := reflect.New(t.Elem())
		if err := decodeQueryValue(n, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Struct:
		return decodeQueryStruct(n, v, path)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			b, err := base64.StdEncoding.DecodeString(n.value)
			if err != nil {
				return queryTypeError(path, n.value, "Member must be base64-encoded")
			}
			v.SetBytes(b)
			return nil
		}
		return decodeQueryList(n, v, path)
	case reflect.Map:
		return decodeQueryMap(n, v, path)
	case reflect.String:
		if !n.set {
			return nil
		}
		v.SetString(n.value)
	case reflect.Bool:
		if !n.set {
			return nil
		}
		switch {
		case strings.EqualFold(n.value, "true"):
			v.SetBool(true)
		case strings.EqualFold(n.value, "false"):
			v.SetBool(false)
		default:
			return queryTypeError(path, n.value, "Member must be a boolean (true or false)")
		}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		if !n.set {
			return nil
		}
		i, err := strconv.ParseInt(n.value, 10, t.Bits())
		if err != nil {
			return queryTypeError(path, n.value, "Member must be an integer of "+strconv.Itoa(t.Bits())+" bits")
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		if !n.set {
			return nil
		}
		f, err := strconv.ParseFloat(n.value, t.Bits())
		if err != nil {
			return queryTypeError(path, n.value, "Member must be a number")
		}
		v.SetFloat(f)
	default:
		return &SerializationError{Detail: "awsmodel: member " + path + " has a Go type (" + t.String() + ") the Query protocol cannot carry"}
	}
	return nil
}

// decodeQueryList decodes Name.member.N (or Name= for an empty list).
func decodeQueryList(n *queryNode, v reflect.Value, path string) error {
	members := n.kids["member"]
	if members == nil {
		if n.set && n.value == "" {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return nil
		}
		if !n.set && len(n.kids) > 0 {
			return nil // only unknown sub-keys: not this list
		}
		return queryTypeError(path, n.value, "Member must be a list, sent as "+path+".member.1, "+path+".member.2, …")
	}
	items, bad := members.indexed()
	if bad != "" {
		return queryTypeError(path+".member."+bad, "", "List index must be a positive integer")
	}
	s := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		if err := decodeQueryValue(item, s.Index(i), path+"["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

// decodeQueryMap decodes Name.entry.N.key and Name.entry.N.value.
func decodeQueryMap(n *queryNode, v reflect.Value, path string) error {
	t := v.Type()
	m := reflect.MakeMapWithSize(t, 0)
	entries, bad := n.kids["entry"].indexed()
	if bad != "" {
		return queryTypeError(path+".entry."+bad, "", "Map entry index must be a positive integer")
	}
	if t.Key().Kind() != reflect.String {
		return &SerializationError{Detail: "awsmodel: map " + path + " has a non-string key type"}
	}
	for i, e := range entries {
		key := e.kids["key"]
		if key == nil || !key.set {
			return queryTypeError(path+".entry."+strconv.Itoa(i+1)+".key", "", "Member must not be null")
		}
		k := reflect.New(t.Key()).Elem()
		k.SetString(key.value)
		val := reflect.New(t.Elem()).Elem()
		if vn := e.kids["value"]; vn != nil {
			if err := decodeQueryValue(vn, val, path+"["+strconv.Quote(key.value)+"]"); err != nil {
				return err
			}
		}
		m.SetMapIndex(k, val)
	}
	v.Set(m)
	return nil
}

// queryTypeError is the validation error of a value that does not parse as
// its member's type.
func queryTypeError(path, value, constraint string) error {
	shown := ""
	if value != "" {
		if len(value) > 64 {
			value = value[:64] + "..."
		}
		shown = strconv.Quote(value)
	}
	return &ValidationError{Violations: []Violation{{Field: path, Constraint: constraint, Value: shown}}}
}

// wireField is a struct field as the wire names it.
type wireField struct {
	index int
	name  string
	// omit is "" (always sent), "omitempty" or "omitzero", from the json tag.
	omit string
}

var wireFieldCache sync.Map // reflect.Type -> []wireField

// wireFields lists the fields of struct type t that have a wire name (their
// json tag's), in declaration order, which is the model's member order.
func wireFields(t reflect.Type) []wireField {
	if fs, ok := wireFieldCache.Load(t); ok {
		return fs.([]wireField)
	}
	var fs []wireField
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" || tag == "" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		f := wireField{index: i, name: name}
		for o := range strings.SplitSeq(opts, ",") {
			if o == "omitempty" || o == "omitzero" {
				f.omit = o
			}
		}
		fs = append(fs, f)
	}
	wireFieldCache.Store(t, fs)
	return fs
}
