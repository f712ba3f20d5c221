package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/berthdev/berth/internal/api/sigv4"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/errdefs"
)

// QueryService is an AWS service spoken over the AWS Query protocol: a form
// (a POST body, or a GET query string) with Action=<Operation>&Version=<date>,
// answered in XML. Requests reach it by the SigV4 credential scope's service
// name; an unsigned request, which has no scope, by its Version.
type QueryService struct {
	// SigningName is the SigV4 service name clients sign with, e.g.
	// "elasticloadbalancing".
	SigningName string
	// Version is the API version every request must carry, e.g. 2015-12-01.
	Version string
	// Namespace is the XML namespace of replies and errors, e.g.
	// http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/.
	Namespace string
	// ValidationCode is the error code for a request that breaks the model's
	// constraints or carries a value of the wrong type; "" means
	// ValidationError.
	ValidationCode string
	// NotImplementedCode is the error code for a known operation that Berth
	// does not implement; "" means InvalidAction.
	NotImplementedCode string
	// ServerErrorCode is the error code (HTTP 500, Type Receiver) for an
	// unexpected failure; "" means InternalFailure.
	ServerErrorCode string
	// Dispatch decodes, validates and runs operation op (a generated
	// DispatchQuery bound to a handler).
	Dispatch func(ctx context.Context, op string, form url.Values) (any, error)
	// ResultWrapper names the element op's output is wrapped in (a
	// generated ResultWrapper); nil means <op>Result.
	ResultWrapper func(op string) string
}

func (q *QueryService) validate() error {
	if q.SigningName == "" || q.Version == "" || q.Namespace == "" || q.Dispatch == nil {
		return fmt.Errorf("api: Query service %q lacks a signing name, version, namespace or dispatcher: %w", q.SigningName, errdefs.ErrInvalidArgument)
	}
	if q.ValidationCode == "" {
		q.ValidationCode = "ValidationError"
	}
	if q.NotImplementedCode == "" {
		q.NotImplementedCode = "InvalidAction"
	}
	if q.ServerErrorCode == "" {
		q.ServerErrorCode = "InternalFailure"
	}
	if q.ResultWrapper == nil {
		q.ResultWrapper = func(op string) string { return op + "Result" }
	}
	return nil
}

// queryService finds the configured Query service a request is for: by its
// signature's scope, or, unsigned, by the Version it names.
func (s *Server) queryService(scope string, form url.Values) *QueryService {
	if scope != "" {
		return s.byScope[scope]
	}
	var found *QueryService
	for _, q := range s.cfg.QueryServices {
		if q.Version == form.Get("Version") {
			if found != nil {
				return nil
			}
			found = q
		}
	}
	return found
}

// versionError is a Query request whose Version is not the service's.
type versionError struct {
	op, version string
	svc         *QueryService
}

func (e *versionError) Error() string {
	v := e.version
	if v == "" {
		v = "NO_VERSION_SPECIFIED"
	}
	return fmt.Sprintf("Could not find operation %s for version %s: Berth serves version %s of the %s API",
		e.op, v, e.svc.Version, e.svc.SigningName)
}

// serveQuery authenticates and runs one AWS Query request.
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request, reqID string, svc *QueryService, op string, form url.Values, body []byte) {
	start := s.cfg.Now()
	buf, err := s.runQuery(r, reqID, svc, op, form, body)
	code := ""
	if err != nil {
		code = s.writeQueryServiceError(w, reqID, svc, err)
	} else {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf)
	}
	var ve *versionError
	if errors.As(err, &ve) {
		op = "unknown" // keep clients from growing the label set
	}
	s.cfg.Metrics.observe(svc.SigningName, op, err, code, s.cfg.Now().Sub(start))
}

// runQuery authenticates, checks the version, dispatches and encodes the reply.
func (s *Server) runQuery(r *http.Request, reqID string, svc *QueryService, op string, form url.Values, body []byte) ([]byte, error) {
	caller, err := s.authenticate(r, body, svc.SigningName)
	if err != nil {
		return nil, err
	}
	if v := form.Get("Version"); v != svc.Version {
		return nil, &versionError{op: op, version: v, svc: svc}
	}
	out, err := svc.Dispatch(WithCaller(r.Context(), caller), op, form)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := awsmodel.EncodeQueryXML(&buf, op, svc.ResultWrapper(op), svc.Namespace, reqID, out); err != nil {
		return nil, fmt.Errorf("encoding %s reply: %w", op, err)
	}
	return buf.Bytes(), nil
}

// queryAuthCodes are the codes the Query services (STS, ELB, IAM) answer a
// failed authentication with, for the JSON services' codes sigv4 uses.
var queryAuthCodes = map[string]struct {
	code   string
	status int
}{
	sigv4.CodeMissingAuthenticationToken: {"MissingAuthenticationToken", http.StatusForbidden},
	sigv4.CodeIncompleteSignature:        {"IncompleteSignature", http.StatusBadRequest},
	sigv4.CodeInvalidSignature:           {"SignatureDoesNotMatch", http.StatusForbidden},
	sigv4.CodeUnrecognizedClient:         {"InvalidClientTokenId", http.StatusForbidden},
}

// queryWireError is wireError for the Query protocol: unknown actions and
// versions are InvalidAction, authentication failures take the Query
// services' codes, and a value of the wrong type is a validation error.
func queryWireError(svc *QueryService, err error) (code string, status int, msg string, internal bool) {
	var (
		ve     *versionError
		unk    *awsmodel.UnknownOperationError
		sigErr *sigv4.Error
		serErr *awsmodel.SerializationError
	)
	switch {
	case errors.As(err, &ve):
		return "InvalidAction", http.StatusBadRequest, ve.Error(), false
	case errors.As(err, &unk):
		return "InvalidAction", http.StatusBadRequest, fmt.Sprintf("Could not find operation %s for version %s", unk.Operation, svc.Version), false
	case errors.As(err, &sigErr):
		if c, ok := queryAuthCodes[sigErr.Code]; ok {
			return c.code, c.status, sigErr.Message, false
		}
		return sigErr.Code, sigErr.HTTPStatus, sigErr.Message, false
	case errors.As(err, &serErr):
		return svc.ValidationCode, http.StatusBadRequest, serErr.Detail, false
	}
	return wireError(errorCodes{svc.ValidationCode, svc.NotImplementedCode, svc.ServerErrorCode}, err)
}

// writeQueryServiceError answers err in svc's XML error shape and returns
// the code it sent.
func (s *Server) writeQueryServiceError(w http.ResponseWriter, reqID string, svc *QueryService, err error) string {
	code, status, msg, internal := queryWireError(svc, err)
	if internal {
		// The cause stays in the log; the client gets the request id to quote.
		s.log.Error("request failed", "service", svc.SigningName, "request_id", reqID, "err", err)
		if msg == "" {
			msg = "An internal error occurred. Quote request id " + reqID + " when reporting it."
		}
	}
	s.writeQueryError(w, reqID, svc.Namespace, code, status, msg)
	return code
}
