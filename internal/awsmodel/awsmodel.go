// Package awsmodel is the runtime support for the API types generated from the
// official AWS service models: the epoch-seconds timestamp, request decoding,
// model validation, the wire error type, and the generic operation caller the
// generated dispatchers use.
//
// The generated packages live beside it (ecstypes, ...); regenerate them with
//
//	go generate ./internal/awsmodel
//
// which reads the botocore models from ../shared/aws-models.
package awsmodel

//go:generate go run ./gen -models ../../../shared/aws-models -service ecs -pkg ecstypes -out ecstypes
//go:generate go run ./gen -models ../../../shared/aws-models -service ecr -pkg ecrtypes -out ecrtypes
//go:generate go run ./gen -models ../../../shared/aws-models -service elbv2 -pkg elbv2types -out elbv2types

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Time is a timestamp that AWS JSON protocols carry as epoch seconds with a
// fractional part (for example 1700000000.123).
type Time struct{ time.Time }

// NewTime returns t as a *Time truncated to milliseconds, the precision AWS
// reports.
func NewTime(t time.Time) *Time { return &Time{t.Truncate(time.Millisecond)} }

// MarshalJSON writes epoch seconds.
func (t Time) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads epoch seconds (a JSON number) or an RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		p, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp %q is neither epoch seconds nor RFC 3339", s)
		}
		t.Time = p
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > 1e11 || f < -1e11 {
		return fmt.Errorf("timestamp %s is not valid epoch seconds", b)
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond)).UTC()
	return nil
}

// Value returns *p, or the zero value for a nil (absent) member.
func Value[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// Document is a free-form JSON value (the Smithy document type).
type Document = json.RawMessage

// Empty is the input or output of an operation that has none.
type Empty struct{}

// APIError is an error in the AWS wire shape: a code (the exception shape's
// name, or the model's error code where it has one, as Query models do), a
// message and the HTTP status it is sent with.
type APIError struct {
	Code    string
	Message string
	Status  int
}

// Error returns "Code: message".
func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// NewAPIError returns an APIError with a formatted message.
func NewAPIError(code string, status int, format string, args ...any) *APIError {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &APIError{Code: code, Message: msg, Status: status}
}

// SerializationError means the request body is not the JSON the operation
// takes (malformed, or a member of the wrong type).
type SerializationError struct{ Detail string }

// Error describes the decoding failure.
func (e *SerializationError) Error() string { return e.Detail }

// NotImplementedError means Berth knows the operation from the model but does
// not implement it (yet).
type NotImplementedError struct{ Service, Operation string }

// Error names the operation.
func (e *NotImplementedError) Error() string {
	return fmt.Sprintf("%s is not implemented by Berth's %s API yet", e.Operation, e.Service)
}

// UnknownOperationError means the operation is not in the service model.
type UnknownOperationError struct{ Service, Operation string }

// Error names the operation.
func (e *UnknownOperationError) Error() string {
	return fmt.Sprintf("operation %q is not part of the %s API", e.Operation, e.Service)
}

// Decode reads a JSON request body into v. An empty body is an empty object.
// Unknown members are ignored, as AWS does; members of the wrong type fail
// with a *SerializationError naming the member.
func Decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return &SerializationError{Detail: describeJSONError(err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &SerializationError{Detail: "unexpected data after the JSON object"}
	}
	return nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return fmt.Sprintf("the request must be a JSON object, not a %s", te.Value)
		}
		return fmt.Sprintf("member %q cannot be a JSON %s (expected %s)", field, te.Value, jsonKind(te.Type))
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "malformed JSON: unexpected end of input"
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return "malformed request: " + msg
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

// Validatable is implemented by every generated input shape.
type Validatable interface {
	Validate(v *Validator)
}

// emptyFiller is implemented by generated output shapes whose lists must be
// sent as [] rather than omitted.
type emptyFiller interface{ FillEmpty() }

// Call decodes body into a new I, validates it, and calls fn. It is the body
// of every case in a generated dispatcher.
func Call[I any, O any, PI interface {
	*I
	Validatable
}](ctx context.Context, body []byte, fn func(context.Context, *I) (*O, error)) (any, error) {
	decode := func(in any) error { return Decode(body, in) }
	// Generated inputs hold optional scalars by value, so the validator
	// sees an absent maxResults or imageTag as 0 or "" and refuses it
	// against a minimum; AWS checks only what a request carries.
	present := func(vs []Violation) []Violation { return presentViolations(vs, body) }
	return call[I, O, PI](ctx, decode, present, fn)
}

// call is Call over any wire decoding: decode fills the new input, and
// present keeps the violations of members the request carries (a missing
// required member is always kept). Valid requests never reach present.
func call[I any, O any, PI interface {
	*I
	Validatable
}](ctx context.Context, decode func(any) error, present func([]Violation) []Violation, fn func(context.Context, *I) (*O, error)) (any, error) {
	in := PI(new(I))
	if err := decode(in); err != nil {
		return nil, err
	}
	var v Validator
	in.Validate(&v)
	if len(v.violations) > 0 {
		v.violations = present(v.violations)
		if err := v.Err(); err != nil {
			return nil, err
		}
	}
	out, err := fn(ctx, (*I)(in))
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = new(O)
	}
	if f, ok := any(out).(emptyFiller); ok {
		f.FillEmpty()
	}
	return out, nil
}

// Validate makes Empty a valid input.
func (*Empty) Validate(*Validator) {}
