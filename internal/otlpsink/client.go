package otlpsink

import (
	"context"
	"crypto/tls"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Client sends OTLP/gRPC to a collector, as an application on the device would.
type Client struct {
	conn    *grpc.ClientConn
	traces  ptraceotlp.GRPCClient
	metrics pmetricotlp.GRPCClient
	logs    plogotlp.GRPCClient
}

// Dial connects to addr (host:port) without TLS.
func Dial(addr string) (*Client, error) {
	return dial(addr, insecure.NewCredentials())
}

// DialTLS connects to addr (host:port) over TLS with cfg.
func DialTLS(addr string, cfg *tls.Config) (*Client, error) {
	return dial(addr, credentials.NewTLS(cfg))
}

func dial(addr string, creds credentials.TransportCredentials) (*Client, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("dialling %s: %w", addr, err)
	}
	return &Client{
		conn:    conn,
		traces:  ptraceotlp.NewGRPCClient(conn),
		metrics: pmetricotlp.NewGRPCClient(conn),
		logs:    plogotlp.NewGRPCClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// SendTraces exports td and returns the collector's answer.
func (c *Client) SendTraces(ctx context.Context, td ptrace.Traces) error {
	_, err := c.traces.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	return err
}

// SendMetrics exports md and returns the collector's answer.
func (c *Client) SendMetrics(ctx context.Context, md pmetric.Metrics) error {
	_, err := c.metrics.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
	return err
}

// SendLogs exports ld and returns the collector's answer.
func (c *Client) SendLogs(ctx context.Context, ld plog.Logs) error {
	_, err := c.logs.Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
	return err
}
