// Package sdkhttp gives benchmarks and tests an HTTP client for the AWS SDK that
// does not stall on loopback.
package sdkhttp

import (
	"io"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Client is the SDK's default HTTP client with the loopback fix below.
func Client() *http.Client {
	return &http.Client{Transport: hideWriteTo{awshttp.NewBuildableClient().GetTransport()}}
}

// hideWriteTo works around a race between the SDK and net/http that shows
// on loopback, where the answer can arrive before the transport has finished
// with the request. smithy-go closes a request's body as soon as the answer's
// headers are in, and its body wrapper then answers net/http's final
// end-of-body check (a WriteTo into io.Discard) with io.EOF; net/http takes
// that for a write error and closes the connection under the answer, the
// call fails with "use of closed network connection", and the SDK retries it
// after a backoff of up to 2 s. Measured with the stock client, a few
// DescribeTasks calls per run stalled for 0.3-1.8 s that way. Hiding WriteTo
// makes the check a Read, whose io.EOF net/http takes as the end.
type hideWriteTo struct{ next http.RoundTripper }

type readOnlyBody struct{ io.ReadCloser }

func (t hideWriteTo) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r = r.Clone(r.Context())
		r.Body = readOnlyBody{r.Body}
	}
	return t.next.RoundTrip(r)
}
