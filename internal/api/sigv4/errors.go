package sigv4

import (
	"fmt"
	"net/http"
	"time"
)

// Error codes that AWS JSON services answer when a request fails authentication.
const (
	// CodeMissingAuthenticationToken: the request is not signed at all.
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	// CodeIncompleteSignature: the signature is malformed or lacks a part.
	CodeIncompleteSignature = "IncompleteSignatureException"
	// CodeInvalidSignature: the signature is well formed but wrong, out of date,
	// or scoped wrongly.
	CodeInvalidSignature = "InvalidSignatureException"
	// CodeUnrecognizedClient: the access key is unknown, or the session token
	// does not go with it.
	CodeUnrecognizedClient = "UnrecognizedClientException"
)

// Error is a request that failed verification. It carries the AWS error code,
// the message AWS sends with that code, and the HTTP status to answer with.
// Messages never contain a secret key or a signature computed by the server.
type Error struct {
	Code       string
	Message    string
	HTTPStatus int
}

// Error returns the code and the message.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Messages that do not vary. The wording is AWS's own (see the package doc).
const (
	msgMissingToken      = "Missing Authentication Token"
	msgInvalidToken      = "The security token included in the request is invalid."
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgBothForms         = "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
	msgHostNotSigned     = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	msgPresignExpired    = "Request has expired."
	msgPayloadHash       = "The provided 'x-amz-content-sha256' header does not match what was computed."
	msgPayloadHashFormat = "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the hex SHA-256 of the payload; " +
		"streaming payloads are not supported."
)

func errMissingToken() *Error {
	return &Error{Code: CodeMissingAuthenticationToken, Message: msgMissingToken, HTTPStatus: http.StatusForbidden}
}

func errUnrecognized() *Error {
	return &Error{Code: CodeUnrecognizedClient, Message: msgInvalidToken, HTTPStatus: http.StatusBadRequest}
}

func errIncomplete(format string, args ...any) *Error {
	return &Error{Code: CodeIncompleteSignature, Message: fmt.Sprintf(format, args...), HTTPStatus: http.StatusBadRequest}
}

func errInvalid(msg string) *Error {
	return &Error{Code: CodeInvalidSignature, Message: msg, HTTPStatus: http.StatusBadRequest}
}

// errExpired and errNotYetCurrent say how far outside the clock-skew window a
// signature is, in AWS's words: "Signature expired: 20150830T122059Z is now
// earlier than 20150830T122100Z (20150830T123600Z - 15 min.)".
func errExpired(signedAt, now time.Time, skew time.Duration) *Error {
	return errInvalid(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s.)",
		signedAt.UTC().Format(amzDateLayout), now.Add(-skew).UTC().Format(amzDateLayout),
		now.UTC().Format(amzDateLayout), skewText(skew)))
}

func errNotYetCurrent(signedAt, now time.Time, skew time.Duration) *Error {
	return errInvalid(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s.)",
		signedAt.UTC().Format(amzDateLayout), now.Add(skew).UTC().Format(amzDateLayout),
		now.UTC().Format(amzDateLayout), skewText(skew)))
}

// skewText renders the window as AWS does ("15 min"); a window that is not a
// whole number of minutes is given in seconds.
func skewText(skew time.Duration) string {
	if skew%time.Minute == 0 {
		return fmt.Sprintf("%d min", skew/time.Minute)
	}
	return fmt.Sprintf("%d sec", skew/time.Second)
}
