package awsmodel

import (
	"bufio"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
)

// QueryTimeLayout is how the AWS Query protocol's XML replies write a
// timestamp: ISO 8601 in UTC with milliseconds, e.g. 2026-11-21T08:00:00.000Z.
const QueryTimeLayout = "2006-01-02T15:04:05.000Z"

// EncodeQueryXML writes the AWS Query protocol's reply to operation op:
//
//	<OpResponse xmlns="namespace">
//	  <ResultWrapper>…the members of out, in model order…</ResultWrapper>
//	  <ResponseMetadata><RequestId>requestID</RequestId></ResponseMetadata>
//	</OpResponse>
//
// without the indentation. out is a generated output struct (or a pointer to
// one; nil has no members). An empty resultWrapper (an operation without
// output) leaves the result element out; an output with no members is sent
// as an empty result element, which the SDKs require. Lists are written as
// <Name><member>…</member></Name>, maps as <Name><entry><key>…</key><value>…
// </value></entry></Name> in key order, timestamps in QueryTimeLayout,
// booleans as true/false, blobs in base64. Nil pointers, lists and maps are
// left out, as are zero values of members tagged omitempty; an empty list
// that is not nil is an empty element.
func EncodeQueryXML(w io.Writer, op, resultWrapper, namespace, requestID string, out any) error {
	e := &xmlEncoder{w: bufio.NewWriter(w)}
	e.open(op+"Response", namespace)
	if resultWrapper != "" {
		v := reflect.ValueOf(out)
		for v.IsValid() && v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		switch {
		case !v.IsValid():
			e.empty(resultWrapper)
		case v.Kind() != reflect.Struct:
			return fmt.Errorf("awsmodel: %s output is a %s, not a struct", op, v.Type())
		case !hasQueryMembers(v):
			e.empty(resultWrapper)
		default:
			e.open(resultWrapper, "")
			e.members(v)
			e.close(resultWrapper)
		}
	}
	e.open("ResponseMetadata", "")
	e.element("RequestId", requestID)
	e.close("ResponseMetadata")
	e.close(op + "Response")
	if e.err != nil {
		return e.err
	}
	return e.w.Flush()
}

// hasQueryMembers reports whether struct v has a member EncodeQueryXML writes.
func hasQueryMembers(v reflect.Value) bool {
	for _, f := range wireFields(v.Type()) {
		if !omitted(v.Field(f.index), f.omit) {
			return true
		}
	}
	return false
}

// omitted reports whether a member is left out of the reply.
func omitted(v reflect.Value, omit string) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		if v.IsNil() {
			return true
		}
	}
	return omit == "omitempty" && v.IsZero()
}

type xmlEncoder struct {
	w   *bufio.Writer
	err error
}

func (e *xmlEncoder) open(name, namespace string) {
	e.w.WriteByte('<')
	e.w.WriteString(name)
	if namespace != "" {
		e.w.WriteString(` xmlns="`)
		e.text(namespace)
		e.w.WriteByte('"')
	}
	e.w.WriteByte('>')
}

func (e *xmlEncoder) close(name string) {
	e.w.WriteString("</")
	e.w.WriteString(name)
	e.w.WriteByte('>')
}

func (e *xmlEncoder) empty(name string) {
	e.w.WriteByte('<')
	e.w.WriteString(name)
	e.w.WriteString("/>")
}

func (e *xmlEncoder) element(name, text string) {
	e.open(name, "")
	e.text(text)
	e.close(name)
}

// text writes s as XML character data: markup characters escaped, and
// characters XML cannot carry replaced with U+FFFD.
func (e *xmlEncoder) text(s string) {
	if err := xml.EscapeText(e.w, []byte(s)); err != nil && e.err == nil {
		e.err = err
	}
}

// members writes the members of struct v in declaration (model) order.
func (e *xmlEncoder) members(v reflect.Value) {
	for _, f := range wireFields(v.Type()) {
		fv := v.Field(f.index)
		if omitted(fv, f.omit) {
			continue
		}
		e.value(f.name, fv)
	}
}

// value writes v as the element name.
func (e *xmlEncoder) value(name string, v reflect.Value) {
	t := v.Type()
	switch {
	case t == timeType:
		e.element(name, v.Interface().(Time).UTC().Format(QueryTimeLayout))
		return
	case t == documentType:
		e.element(name, string(v.Bytes()))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		e.value(name, v.Elem())
	case reflect.Struct:
		if !hasQueryMembers(v) {
			e.empty(name)
			return
		}
		e.open(name, "")
		e.members(v)
		e.close(name)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			e.element(name, base64.StdEncoding.EncodeToString(v.Bytes()))
			return
		}
		if v.Len() == 0 {
			e.empty(name)
			return
		}
		e.open(name, "")
		for i := range v.Len() {
			e.value("member", v.Index(i))
		}
		e.close(name)
	case reflect.Map:
		if v.Len() == 0 {
			e.empty(name)
			return
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		e.open(name, "")
		for _, k := range keys {
			e.open("entry", "")
			e.value("key", k)
			e.value("value", v.MapIndex(k))
			e.close("entry")
		}
		e.close(name)
	case reflect.String:
		e.element(name, v.String())
	case reflect.Bool:
		e.element(name, strconv.FormatBool(v.Bool()))
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		e.element(name, strconv.FormatInt(v.Int(), 10))
	case reflect.Float32, reflect.Float64:
		e.element(name, formatQueryFloat(v.Float()))
	default:
		if e.err == nil {
			e.err = fmt.Errorf("awsmodel: member %s has a Go type (%s) the Query protocol cannot carry", name, t)
		}
	}
}

// formatQueryFloat writes a double as the SDKs read it back.
func formatQueryFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
