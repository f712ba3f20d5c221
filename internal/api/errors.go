package api

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/berthdev/berth/internal/api/sigv4"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/errdefs"
)

// errorCodes are a service's codes for the error classes every service has.
type errorCodes struct{ validation, notImplemented, server string }

// jsonDefaultCodes are the codes of a request no JSON service was found for.
var jsonDefaultCodes = errorCodes{"ValidationException", "NotImplementedException", "InternalFailure"}

func (s *JSONService) codes() errorCodes {
	if s == nil {
		return jsonDefaultCodes
	}
	return errorCodes{s.ValidationCode, s.NotImplementedCode, s.ServerErrorCode}
}

// wireError maps any error to the AWS code, HTTP status and message sent to
// the client. It is the one place where error classes meet the wire (the
// Query protocol renames a few in queryWireError).
func wireError(codes errorCodes, err error) (code string, status int, msg string, internal bool) {
	var (
		apiErr *awsmodel.APIError
		sigErr *sigv4.Error
		valErr *awsmodel.ValidationError
		serErr *awsmodel.SerializationError
		nieErr *awsmodel.NotImplementedError
		unkErr *awsmodel.UnknownOperationError
	)
	validation, notImpl, server := codes.validation, codes.notImplemented, codes.server
	switch {
	case errors.As(err, &apiErr):
		status := apiErr.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		return apiErr.Code, status, apiErr.Message, status >= 500
	case errors.As(err, &sigErr):
		return sigErr.Code, sigErr.HTTPStatus, sigErr.Message, false
	case errors.As(err, &valErr):
		return validation, http.StatusBadRequest, valErr.Error(), false
	case errors.As(err, &serErr):
		return "SerializationException", http.StatusBadRequest, serErr.Detail, false
	case errors.As(err, &nieErr):
		return notImpl, http.StatusBadRequest, nieErr.Error(), false
	case errors.As(err, &unkErr):
		return "UnknownOperationException", http.StatusBadRequest, unkErr.Error(), false
	case errors.Is(err, errBodyTooLarge):
		return "RequestEntityTooLargeException", http.StatusRequestEntityTooLarge, err.Error(), false
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return validation, http.StatusBadRequest, err.Error(), false
	case errors.Is(err, errdefs.ErrNotFound):
		return "ResourceNotFoundException", http.StatusBadRequest, err.Error(), false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "RequestTimeoutException", http.StatusRequestTimeout, "the request was cancelled before it completed", false
	}
	return server, http.StatusInternalServerError, "", true
}

// writeJSONError answers err in the AWS JSON error shape and returns the
// code it sent.
func (s *Server) writeJSONError(w http.ResponseWriter, r *http.Request, reqID string, svc *JSONService, err error) string {
	code, status, msg, internal := wireError(svc.codes(), err)
	target := r.Header.Get("X-Amz-Target")
	if internal {
		// The cause stays in the log; the client gets the request id to quote.
		s.log.Error("request failed", "target", target, "request_id", reqID, "err", err)
		if msg == "" {
			msg = "An internal error occurred. Quote request id " + reqID + " when reporting it."
		}
	} else {
		s.log.Debug("request refused", "target", target, "request_id", reqID, "code", code, "status", status)
	}
	version := "1.1"
	if svc != nil {
		version = svc.JSONVersion
	}
	w.Header().Set("Content-Type", "application/x-amz-json-"+version)
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	buf, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, msg})
	_, _ = w.Write(buf)
	return code
}

// writeQueryError answers in the AWS Query protocol's XML error shape, in
// the service's namespace (none when the service is not known):
//
//	<ErrorResponse xmlns="…"><Error><Type>Sender</Type><Code>…</Code>
//	<Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>
//
// The Type is Receiver for a server-side failure (HTTP 5xx).
func (s *Server) writeQueryError(w http.ResponseWriter, reqID, namespace, code string, status int, msg string) {
	s.log.Debug("request refused", "protocol", "query", "request_id", reqID, "code", code, "status", status)
	type errorBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type response struct {
		XMLName   xml.Name  `xml:"ErrorResponse"`
		Namespace string    `xml:"xmlns,attr,omitempty"`
		Error     errorBody `xml:"Error"`
		RequestID string    `xml:"RequestId"`
	}
	fault := "Sender"
	if status >= 500 {
		fault = "Receiver"
	}
	buf, _ := xml.Marshal(response{Namespace: namespace, Error: errorBody{Type: fault, Code: code, Message: msg}, RequestID: reqID})
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(append([]byte(xml.Header), buf...))
}

// writeCBORError answers in the Smithy RPCv2 CBOR error shape: a CBOR map
// with __type and message.
func (s *Server) writeCBORError(w http.ResponseWriter, reqID, code string, status int, msg string) {
	s.log.Debug("request refused", "protocol", "rpcv2-cbor", "request_id", reqID, "code", code, "status", status)
	w.Header().Set("smithy-protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.WriteHeader(status)
	_, _ = w.Write(cborStringMap("__type", code, "message", msg))
}

// cborStringMap encodes pairs of strings as a CBOR map of text strings.
func cborStringMap(kv ...string) []byte {
	out := cborHead(nil, 5, uint64(len(kv)/2))
	for _, s := range kv {
		out = cborHead(out, 3, uint64(len(s)))
		out = append(out, s...)
	}
	return out
}

// cborHead appends a CBOR item head of major type major with argument n.
func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n < 1<<8:
		return append(b, m|24, byte(n))
	case n < 1<<16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n < 1<<32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
