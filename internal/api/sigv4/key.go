package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"strings"
	"sync"
)

// keyCacheSize bounds the derived-key cache. One entry serves one secret for
// one day, region and service, so a handful of keys in use need only a few.
const keyCacheSize = 256

// scopeKey names a derived signing key. The secret is part of the name so
// that a rotated secret never meets a key derived from the old one.
type scopeKey struct {
	secret, date, region, service string
}

// keyCache holds derived signing keys so that the hot path does one HMAC per
// request instead of five. Its zero value is ready to use.
type keyCache struct {
	mu sync.Mutex
	m  map[scopeKey]*signer
}

// signer holds one derived signing key, and HMACs already keyed with it for
// reuse: keying an HMAC costs two SHA-256 blocks and five allocations.
type signer struct {
	key  [sha256.Size]byte
	macs sync.Pool // of hash.Hash
}

// sign writes HMAC-SHA256(key, stringToSign) to dst.
func (s *signer) sign(dst *[sha256.Size]byte, stringToSign []byte) {
	mac, _ := s.macs.Get().(hash.Hash)
	if mac == nil {
		mac = hmac.New(sha256.New, s.key[:])
	} else {
		mac.Reset()
	}
	mac.Write(stringToSign)
	mac.Sum(dst[:0])
	s.macs.Put(mac)
}

// signerFor returns the signer for secret and the credential scope
// date/region/service, deriving the key and caching it on a miss.
func (c *keyCache) signerFor(secret, date, region, service string) *signer {
	k := scopeKey{secret, date, region, service}
	c.mu.Lock()
	s, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return s
	}
	s = &signer{key: deriveKey(secret, date, region, service)}
	// The scope strings are slices of the request's Authorization header:
	// copy them so the cache does not keep whole headers alive.
	k = scopeKey{secret, strings.Clone(date), strings.Clone(region), strings.Clone(service)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[scopeKey]*signer)
	}
	if len(c.m) >= keyCacheSize {
		// Evict one entry. Map iteration starts at a random place, so this
		// is random eviction: cheap, and good enough for keys that go stale
		// every day anyway.
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = s
	return s
}

// deriveKey is the SigV4 key-derivation chain:
//
//	kDate    = HMAC("AWS4" + secret, date)
//	kRegion  = HMAC(kDate, region)
//	kService = HMAC(kRegion, service)
//	kSigning = HMAC(kService, "aws4_request")
func deriveKey(secret, date, region, service string) [sha256.Size]byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k[:], region)
	k = hmacSHA256(k[:], service)
	return hmacSHA256(k[:], terminator)
}

func hmacSHA256(key []byte, data string) [sha256.Size]byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	var out [sha256.Size]byte
	mac.Sum(out[:0])
	return out
}
