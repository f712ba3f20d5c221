package state

import (
	"fmt"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/store"
)

// ClientTokenTTL is how long a RunTask clientToken is remembered.
const ClientTokenTTL = time.Hour

// ClientToken is the remembered outcome of a RunTask call with a
// clientToken: a retry with the same token gets the same tasks.
type ClientToken struct {
	// Request fingerprints the parameters, so a reuse with others is refused.
	Request  string             `json:"request"`
	TaskArns []string           `json:"taskArns"`
	Failures []ecstypes.Failure `json:"failures,omitempty"`
}

func clientTokenKey(cluster, token string) string { return ClientTokensPrefix + cluster + "/" + token }

// GetClientToken returns the outcome remembered for a token.
func GetClientToken(tx store.ReadTx, cluster, token string) (*ClientToken, bool, error) {
	return Get[ClientToken](tx, clientTokenKey(cluster, token))
}

// PutClientToken remembers a RunTask outcome until now+ClientTokenTTL.
func PutClientToken(tx store.Tx, cluster, token string, ct *ClientToken, now time.Time) error {
	if err := Put(tx, clientTokenKey(cluster, token), ct); err != nil {
		return err
	}
	return tx.Put(fmt.Sprintf("%s%013d/%s/%s", ClientTokenTimesPrefix, now.UnixMilli(), cluster, token), nil)
}

// ClientTokensBefore is the time-index bound of tokens recorded before t.
func ClientTokensBefore(t time.Time) string {
	return fmt.Sprintf("%s%013d", ClientTokenTimesPrefix, t.UnixMilli())
}

// DeleteClientToken removes an expired token given its time-index key.
func DeleteClientToken(tx store.Tx, indexKey string) error {
	parts := strings.SplitN(strings.TrimPrefix(indexKey, ClientTokenTimesPrefix), "/", 3)
	if len(parts) == 3 {
		if err := deleteIfPresent(tx, clientTokenKey(parts[1], parts[2])); err != nil {
			return err
		}
	}
	return tx.Delete(indexKey)
}
