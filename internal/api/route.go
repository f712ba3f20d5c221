package api

import (
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// protocol is an AWS wire protocol the front door recognises.
type protocol int

const (
	protoUnknown protocol = iota
	// protoJSON is AWS JSON 1.0/1.1: POST / with X-Amz-Target: <prefix>.<Operation>.
	protoJSON
	// protoQuery is AWS Query: a form (POST body or GET query string) with
	// Action=<Operation>&Version=<date>; the service is the SigV4 scope's.
	protoQuery
	// protoRPCv2 is Smithy RPCv2 CBOR: POST /service/<Service>/operation/<Operation>.
	protoRPCv2
)

// route is what a request asks for, before any service is looked up.
type route struct {
	proto protocol
	// service is the X-Amz-Target prefix (JSON), the SigV4 signing name
	// (Query) or the Smithy service name (RPCv2).
	service string
	op      string
	// form is the Query request's parameters.
	form url.Values
}

// detectRoute works out protocol, service and operation from the request.
// body is the already-read request body (needed for Query's POST form).
func detectRoute(r *http.Request, body []byte) route {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		prefix, op, _ := strings.Cut(target, ".")
		return route{proto: protoJSON, service: prefix, op: op}
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/service/"); ok {
		svc, op, found := strings.Cut(rest, "/operation/")
		if found && svc != "" && op != "" && !strings.Contains(op, "/") {
			return route{proto: protoRPCv2, service: svc, op: op}
		}
	}
	if form := queryForm(r, body); form != nil && form.Get("Action") != "" {
		return route{proto: protoQuery, service: scopeService(r), op: form.Get("Action"), form: form}
	}
	return route{}
}

// queryForm returns the Query-protocol parameters: the form body of a POST,
// or the URL query of a GET.
func queryForm(r *http.Request, body []byte) url.Values {
	switch r.Method {
	case http.MethodPost:
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "application/x-www-form-urlencoded" {
			return nil
		}
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil
		}
		return v
	case http.MethodGet:
		return r.URL.Query()
	}
	return nil
}

// isForm reports whether r looks like an AWS Query request, before its body
// is read: a form POST, or a GET with an Action.
func isForm(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost:
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		return ct == "application/x-www-form-urlencoded" && r.Header.Get("X-Amz-Target") == ""
	case http.MethodGet:
		return r.URL.Query().Get("Action") != ""
	}
	return false
}

// scopeService reads the service name from the SigV4 credential scope
// (…/<date>/<region>/<service>/aws4_request) of the header or presigned
// form, without verifying anything: it only picks the API to route to.
func scopeService(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		if i := strings.Index(auth, "Credential="); i >= 0 {
			cred = auth[i+len("Credential="):]
			if j := strings.IndexAny(cred, ", "); j >= 0 {
				cred = cred[:j]
			}
		}
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}

// knownJSONServices names the AWS JSON APIs Berth will serve, so a request
// for one that is not there yet gets a message saying which it is.
var knownJSONServices = map[string]string{
	"AmazonEC2ContainerServiceV20141113":   "Amazon ECS",
	"AmazonEC2ContainerRegistry_V20150921": "Amazon ECR",
	"Logs_20140328":                        "CloudWatch Logs",
	"GraniteServiceVersion20100801":        "CloudWatch",
	"AnyScaleFrontendService":              "Application Auto Scaling",
	"Route53AutoNaming_v20170314":          "AWS Cloud Map",
	"secretsmanager":                       "AWS Secrets Manager",
}

// knownQueryServices names Query-protocol APIs by signing name.
var knownQueryServices = map[string]string{
	"elasticloadbalancing": "Elastic Load Balancing v2",
	"monitoring":           "CloudWatch",
	"sts":                  "AWS STS",
}
