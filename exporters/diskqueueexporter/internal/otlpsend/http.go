package otlpsend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
)

const maxResponseRead = 64 << 10

type httpSender struct {
	client    *http.Client
	url       string
	userAgent string
}

// NewHTTP builds an OTLP/HTTP sender with the collector's HTTP client (TLS, headers, auth
// extensions, compression) posting to <endpoint>/v1/<signal>.
func NewHTTP(ctx context.Context, cfg *confighttp.ClientConfig, signal Signal, host component.Host, set component.TelemetrySettings, userAgent string) (Sender, error) {
	client, err := cfg.ToClient(ctx, host.GetExtensions(), set)
	if err != nil {
		return nil, fmt.Errorf("creating the OTLP/HTTP client: %w", err)
	}
	return &httpSender{client: client, url: strings.TrimSuffix(cfg.Endpoint, "/") + "/v1/" + string(signal), userAgent: userAgent}, nil
}

func (s *httpSender) Send(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return &RejectedError{Err: err}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", s.userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("sending to %s: %w", s.url, err)
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, maxResponseRead)
		_ = resp.Body.Close()
	}()
	return classifyHTTP(resp, s.url)
}

// classifyHTTP turns a response into nil, a rejection, a throttle or a plain retryable
// error. Only statuses that blame the payload are permanent: an auth or routing mistake
// (401, 403, 404) is an operator's to fix, and dropping the backlog meanwhile would lose it.
func classifyHTTP(resp *http.Response, url string) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	err := fmt.Errorf("%s answered HTTP %d", url, resp.StatusCode)
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return &RejectedError{Err: err}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if d := retryAfter(resp.Header.Get("Retry-After")); d > 0 {
			return &ThrottleError{Err: err, Delay: d}
		}
	}
	return err
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func (s *httpSender) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
