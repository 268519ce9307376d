package controlloop

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/controlloop/internal/api"
)

// Defaults of the command API's hardening keys. The API serves a handful of operators and
// an HMI on a Pi: a client that needs more than 5 s to send its headers or 10 s for a body
// of a few hundred bytes is broken or hostile, and 16 connections are far more than the
// legitimate clients open, yet bound the goroutines and buffers a flood can pin.
const (
	defaultReadHeaderTimeout = 5 * time.Second
	defaultReadTimeout       = 10 * time.Second
	defaultWriteTimeout      = 30 * time.Second
	defaultIdleTimeout       = 30 * time.Second
	defaultMaxConnections    = 16
	// A 16-byte token is 128 bits when random; shorter ones are passwords someone typed.
	defaultMinTokenLength = 16
)

// AuthThrottleConfig blocks a client address after repeated failed authentications.
type AuthThrottleConfig struct {
	// MaxFailures failed authentications from one address within Window block it.
	MaxFailures int           `mapstructure:"max_failures"`
	Window      time.Duration `mapstructure:"window"`
	// Block is how long the address then gets 429 without its credentials being checked.
	Block time.Duration `mapstructure:"block"`
	// MaxClients bounds the addresses remembered (least recently seen forgotten first).
	MaxClients int `mapstructure:"max_clients"`
}

func defaultAPIConfig() APIConfig {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "localhost:8090"
	srv.MaxRequestBodySize = 64 << 10
	srv.ReadHeaderTimeout = defaultReadHeaderTimeout
	srv.ReadTimeout = defaultReadTimeout
	srv.WriteTimeout = defaultWriteTimeout
	srv.IdleTimeout = defaultIdleTimeout
	return APIConfig{
		ServerConfig:   srv,
		RateLimit:      RateLimitConfig{RequestsPerSecond: 5, Burst: 10},
		CommandTimeout: 5 * time.Second,
		// Five wrong tokens a minute is more than an operator mistypes; a minute's block
		// makes guessing hopeless without locking a fumbling operator out for long.
		AuthThrottle:   AuthThrottleConfig{MaxFailures: 5, Window: time.Minute, Block: time.Minute, MaxClients: 1024},
		MinTokenLength: defaultMinTokenLength,
		MaxConnections: defaultMaxConnections,
	}
}

// validate checks the API's hardening keys; each error names its key.
func (a *APIConfig) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if a.ReadHeaderTimeout <= 0 {
		add("api.read_header_timeout: must be positive (0 lets a client hold a connection forever by sending its headers slowly), got %s", a.ReadHeaderTimeout)
	}
	if a.ReadTimeout <= 0 {
		add("api.read_timeout: must be positive (0 lets a client hold a connection forever by sending its body slowly), got %s", a.ReadTimeout)
	}
	if a.WriteTimeout < 0 {
		add("api.write_timeout: must not be negative, got %s", a.WriteTimeout)
	} else if a.WriteTimeout > 0 && a.WriteTimeout <= a.CommandTimeout {
		add("api.write_timeout: must be longer than api.command_timeout (%s) or a slow command's answer is cut off, got %s", a.CommandTimeout, a.WriteTimeout)
	}
	if a.IdleTimeout < 0 {
		add("api.idle_timeout: must not be negative, got %s", a.IdleTimeout)
	}
	if a.MaxConnections < 1 {
		add("api.max_connections: must be at least 1, got %d", a.MaxConnections)
	}
	if a.MinTokenLength < 0 {
		add("api.min_token_length: must not be negative (0 turns the check off), got %d", a.MinTokenLength)
	}
	t := a.AuthThrottle
	if t.MaxFailures < 1 {
		add("api.auth_throttle.max_failures: must be at least 1, got %d", t.MaxFailures)
	}
	if t.Window <= 0 {
		add("api.auth_throttle.window: must be positive, got %s", t.Window)
	}
	if t.Block <= 0 {
		add("api.auth_throttle.block: must be positive, got %s", t.Block)
	}
	if t.MaxClients < 1 {
		add("api.auth_throttle.max_clients: must be at least 1, got %d", t.MaxClients)
	}
	return errs
}

// checkAPIToken refuses a bearertokenauth authenticator whose token is shorter than
// api.min_token_length. The token lives in the authenticator's configuration, which this
// extension cannot read, so the check runs at start on what the authenticator itself
// presents as a client (api.ClientCredential); with a `tokens` list that is the first one,
// and a token file rewritten later is not checked again.
func checkAPIToken(cfg *APIConfig, exts map[component.ID]component.Component, log *zap.Logger) error {
	if !cfg.Auth.HasValue() || cfg.MinTokenLength == 0 {
		return nil
	}
	id := cfg.Auth.Get().Config.AuthenticatorID
	if id.Type().String() != "bearertokenauth" {
		return nil
	}
	client, ok := exts[id].(extensionauth.HTTPClient)
	if !ok {
		log.Warn("api.min_token_length: cannot check the token of the API's authenticator: it has no client side to probe", zap.String("authenticator", id.String()))
		return nil
	}
	token, err := api.ClientCredential(client)
	if err != nil {
		return fmt.Errorf("api.min_token_length: checking the token of %s: %w", id, err)
	}
	if len(token) < cfg.MinTokenLength {
		return fmt.Errorf("api.min_token_length: the token of %s is %d bytes, at least %d are required: set a random token (for example `openssl rand -hex 24` into FIELDCOL_API_TOKEN) or, knowingly, lower api.min_token_length", id, len(token), cfg.MinTokenLength)
	}
	return nil
}
