package sigv4_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/sigv4"
)

// The AWS SigV4 test suite's get-vanilla request, verified with the
// documented example keys; then the same request with its date pushed out of
// the clock-skew window.
func ExampleVerifier() {
	keys := map[string]sigv4.Credentials{
		"AKIDEXAMPLE": {AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
	}
	v := &sigv4.Verifier{
		Lookup: func(_ context.Context, id string) (sigv4.Credentials, bool) {
			c, ok := keys[id]
			return c, ok
		},
		Now: func() time.Time { return time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC) },
	}
	raw := "GET / HTTP/1.1\r\n" +
		"Host: example.amazonaws.com\r\n" +
		"X-Amz-Date: 20150830T123600Z\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " +
		"SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31\r\n\r\n"
	r, _ := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))

	res, err := v.Verify(context.Background(), r, nil)
	fmt.Println(res.AccessKeyID, res.Region, res.Service, err)

	r.Header.Set("X-Amz-Date", "20150830T120000Z")
	_, err = v.Verify(context.Background(), r, nil)
	var e *sigv4.Error
	if errors.As(err, &e) {
		fmt.Println(e.HTTPStatus, e.Code)
		fmt.Println(e.Message)
	}
	// Output:
	// AKIDEXAMPLE us-east-1 service <nil>
	// 400 InvalidSignatureException
	// Signature expired: 20150830T120000Z is now earlier than 20150830T122100Z (20150830T123600Z - 15 min.)
}
