package otlpsend

import (
	"context"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

type grpcSender struct {
	conn   *grpc.ClientConn
	export func(ctx context.Context, body []byte) error
	md     metadata.MD
	opts   []grpc.CallOption
}

// NewGRPC builds an OTLP/gRPC sender with the collector's gRPC client (TLS, headers, auth
// extensions, compression, keepalive).
func NewGRPC(ctx context.Context, cfg *configgrpc.ClientConfig, signal Signal, host component.Host, set component.TelemetrySettings, userAgent string) (Sender, error) {
	conn, err := cfg.ToClientConn(ctx, host.GetExtensions(), set, configgrpc.WithGrpcDialOption(grpc.WithUserAgent(userAgent)))
	if err != nil {
		return nil, fmt.Errorf("creating the OTLP/gRPC client: %w", err)
	}
	headers := map[string]string{}
	for k, v := range cfg.Headers.Iter {
		headers[k] = string(v)
	}
	s := &grpcSender{conn: conn, md: metadata.New(headers), opts: []grpc.CallOption{grpc.WaitForReady(cfg.WaitForReady)}}
	switch signal {
	case Traces:
		c := ptraceotlp.NewGRPCClient(conn)
		s.export = func(ctx context.Context, body []byte) error {
			req := ptraceotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				return &RejectedError{Err: err}
			}
			_, err := c.Export(ctx, req, s.opts...)
			return err
		}
	case Metrics:
		c := pmetricotlp.NewGRPCClient(conn)
		s.export = func(ctx context.Context, body []byte) error {
			req := pmetricotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				return &RejectedError{Err: err}
			}
			_, err := c.Export(ctx, req, s.opts...)
			return err
		}
	case Logs:
		c := plogotlp.NewGRPCClient(conn)
		s.export = func(ctx context.Context, body []byte) error {
			req := plogotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				return &RejectedError{Err: err}
			}
			_, err := c.Export(ctx, req, s.opts...)
			return err
		}
	default:
		_ = conn.Close()
		return nil, fmt.Errorf("unsupported signal %q", signal)
	}
	return s, nil
}

func (s *grpcSender) Send(ctx context.Context, body []byte) error {
	if len(s.md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, s.md)
	}
	return classifyGRPC(s.export(ctx, body))
}

// classifyGRPC maps a gRPC status: InvalidArgument blames the payload and is permanent;
// everything else is worth another attempt from a durable queue, honouring RetryInfo.
func classifyGRPC(err error) error {
	if err == nil || IsRejected(err) {
		return err
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.OK:
		return nil
	case codes.InvalidArgument:
		return &RejectedError{Err: err}
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return &ThrottleError{Err: err, Delay: ri.GetRetryDelay().AsDuration()}
		}
	}
	return err
}

func (s *grpcSender) Close() error { return s.conn.Close() }
