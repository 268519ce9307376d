package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/extension/extensionauth"
)

var errProbe = errors.New("probe request: not sent")

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// ClientCredential returns the credential an authenticator sends as a client, with its
// scheme ("Bearer ") removed: for bearertokenauth that is the first of the tokens its server
// side accepts. bearertokenauth exposes its token nowhere else, so the probe asks its
// RoundTripper to decorate a request that is never sent and reads the one header it sets.
func ClientCredential(c extensionauth.HTTPClient) (string, error) {
	var sent http.Header
	rt, err := c.RoundTripper(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = r.Header.Clone()
		return nil, errProbe
	}))
	if err != nil {
		return "", fmt.Errorf("asking the authenticator for its client side: %w", err)
	}
	req, err := http.NewRequest(http.MethodGet, "http://probe.invalid/", http.NoBody)
	if err != nil {
		return "", err
	}
	if _, err := rt.RoundTrip(req); !errors.Is(err, errProbe) && err != nil {
		return "", fmt.Errorf("probing the authenticator: %w", err)
	}
	if len(sent) != 1 {
		return "", fmt.Errorf("probing the authenticator: expected it to set one header, it set %d", len(sent))
	}
	for _, v := range sent {
		value := ""
		if len(v) > 0 {
			value = v[0]
		}
		// "Bearer <token>", or the bare token when the scheme is empty.
		if _, token, ok := strings.Cut(value, " "); ok {
			return token, nil
		}
		return value, nil
	}
	return "", nil
}
