//go:build linux

package integration

// gRPC through proxynow to a grpc-go server behind an h2c:// backend, from
// clients speaking h2c (prior knowledge) and HTTP/2 over TLS: unary,
// server-streaming and bidi-streaming calls, headers, trailers and status
// codes. The test service is declared by hand with a codec that carries raw
// bytes (no protoc); the standard health service rides on the same server.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// grpcRawCodec marshals *[]byte as is and anything else as protobuf, so
// that one server (grpc.ForceServerCodec) serves both the hand-written raw
// service and the generated health service, without touching grpc's global
// codec registry.
type grpcRawCodec struct{}

func (grpcRawCodec) Name() string { return "proxynow-raw" }

func (grpcRawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *[]byte:
		return *m, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("grpcRawCodec: cannot marshal %T", v)
}

func (grpcRawCodec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case *[]byte:
		*m = append((*m)[:0], data...)
		return nil
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("grpcRawCodec: cannot unmarshal into %T", v)
}

const grpcService = "proxynow.test.Echo"

// grpcEchoDesc is the hand-written service:
//
//	Unary(bytes) -> "echo:"+bytes; "notfound:X" fails with NotFound
//	ServerStream("N" or "N:fail") -> N messages "item i", then OK or
//	    ResourceExhausted after the messages
//	Bidi(stream) -> "re:"+each message, then a trailer with the count
var grpcEchoDesc = grpc.ServiceDesc{
	ServiceName: grpcService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			if _, ok := ctx.Deadline(); !ok {
				return nil, status.Error(codes.FailedPrecondition, "no deadline reached the server (grpc-timeout lost)")
			}
			md, _ := metadata.FromIncomingContext(ctx)
			if key, ok := bytes.CutPrefix(in, []byte("notfound:")); ok {
				_ = grpc.SetTrailer(ctx, metadata.Pairs("x-missing", string(key)))
				return nil, status.Errorf(codes.NotFound, "no such key %q", key)
			}
			_ = grpc.SetHeader(ctx, metadata.Pairs("x-echo-header", "h:"+strings.Join(md.Get("x-client"), ",")))
			_ = grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", "t1", "x-echo-bin", string([]byte{0, 1, 2, 255})))
			out := append([]byte("echo:"), in...)
			return &out, nil
		},
	}},
	Streams: []grpc.StreamDesc{
		{
			StreamName:    "ServerStream",
			ServerStreams: true,
			Handler: func(_ any, ss grpc.ServerStream) error {
				var in []byte
				if err := ss.RecvMsg(&in); err != nil {
					return err
				}
				spec, fail := strings.CutSuffix(string(in), ":fail")
				n, err := strconv.Atoi(spec)
				if err != nil || n < 0 || n > 10000 {
					return status.Errorf(codes.InvalidArgument, "bad count %q", in)
				}
				for i := range n {
					out := fmt.Appendf(nil, "item %d", i)
					if err := ss.SendMsg(&out); err != nil {
						return err
					}
				}
				if fail {
					return status.Errorf(codes.ResourceExhausted, "stopped after %d items", n)
				}
				return nil
			},
		},
		{
			StreamName:    "Bidi",
			ServerStreams: true,
			ClientStreams: true,
			Handler: func(_ any, ss grpc.ServerStream) error {
				n := 0
				for {
					var in []byte
					err := ss.RecvMsg(&in)
					if errors.Is(err, io.EOF) {
						ss.SetTrailer(metadata.Pairs("x-received", strconv.Itoa(n)))
						return nil
					}
					if err != nil {
						return err
					}
					n++
					out := append([]byte("re:"), in...)
					if err := ss.SendMsg(&out); err != nil {
						return err
					}
				}
			},
		},
	},
}

// grpcBackend is a grpc-go server on a loopback port with the echo and
// health services.
type grpcBackend struct {
	addr   string
	health *health.Server
}

func startGRPCBackend(t *testing.T) *grpcBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(grpcRawCodec{}))
	srv.RegisterService(&grpcEchoDesc, struct{}{})
	hs := health.NewServer()
	hs.SetServingStatus(grpcService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Shutdown()
		srv.Stop()
		<-done
	})
	return &grpcBackend{addr: ln.Addr().String(), health: hs}
}

func TestProtoGRPC(t *testing.T) {
	be := startGRPCBackend(t)
	pp := startProtoProxy(t, true, fmt.Sprintf(`backend "h2c://%s" {}`, be.addr))

	modes := []struct {
		name  string
		creds credentials.TransportCredentials
	}{
		{"h2c", insecure.NewCredentials()},
		{"tls", credentials.NewTLS(pp.tlsConfig())},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cc, err := grpc.NewClient("passthrough:///"+pp.addr,
				grpc.WithTransportCredentials(m.creds),
				grpc.WithDefaultCallOptions(grpc.ForceCodec(grpcRawCodec{})))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cc.Close() })
			testGRPCCalls(t, cc, be)
		})
	}
}

func testGRPCCalls(t *testing.T, cc *grpc.ClientConn, be *grpcBackend) {
	t.Run("unary", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(protoCtx(t), "x-client", "c1")
		in := []byte("hello")
		var out []byte
		var hdr, trl metadata.MD
		if err := cc.Invoke(ctx, "/"+grpcService+"/Unary", &in, &out, grpc.Header(&hdr), grpc.Trailer(&trl)); err != nil {
			t.Fatalf("unary call through proxynow: %v", err)
		}
		if string(out) != "echo:hello" {
			t.Fatalf("reply %q, want %q", out, "echo:hello")
		}
		if got := hdr.Get("x-echo-header"); len(got) != 1 || got[0] != "h:c1" {
			t.Errorf("response header x-echo-header = %q, want [h:c1] (request metadata or response headers lost)", got)
		}
		if got := trl.Get("x-echo-trailer"); len(got) != 1 || got[0] != "t1" {
			t.Errorf("trailer x-echo-trailer = %q, want [t1]; trailers: %v", got, trl)
		}
		if got := trl.Get("x-echo-bin"); len(got) != 1 || got[0] != string([]byte{0, 1, 2, 255}) {
			t.Errorf("binary trailer x-echo-bin = %q, want [\\x00\\x01\\x02\\xff]", got)
		}
	})

	t.Run("unary-large", func(t *testing.T) {
		in := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		var out []byte
		if err := cc.Invoke(protoCtx(t), "/"+grpcService+"/Unary", &in, &out); err != nil {
			t.Fatalf("1 MiB unary call: %v", err)
		}
		if len(out) != len(in)+5 || !bytes.Equal(out[5:], in) {
			t.Fatalf("1 MiB reply has %d bytes, want %d and the same content", len(out), len(in)+5)
		}
	})

	t.Run("unary-notfound", func(t *testing.T) {
		in := []byte("notfound:k42")
		var out []byte
		var trl metadata.MD
		err := cc.Invoke(protoCtx(t), "/"+grpcService+"/Unary", &in, &out, grpc.Trailer(&trl))
		st, _ := status.FromError(err)
		if st.Code() != codes.NotFound || st.Message() != `no such key "k42"` {
			t.Fatalf("status %v %q (err %v), want NotFound %q", st.Code(), st.Message(), err, `no such key "k42"`)
		}
		if got := trl.Get("x-missing"); len(got) != 1 || got[0] != "k42" {
			t.Errorf("trailer x-missing = %q with an error status, want [k42]", got)
		}
	})

	t.Run("unimplemented", func(t *testing.T) {
		in := []byte("x")
		var out []byte
		err := cc.Invoke(protoCtx(t), "/"+grpcService+"/NoSuchMethod", &in, &out)
		if st, _ := status.FromError(err); st.Code() != codes.Unimplemented {
			t.Fatalf("unknown method: %v, want Unimplemented", err)
		}
	})

	t.Run("server-streaming", func(t *testing.T) {
		for _, fail := range []bool{false, true} {
			req := []byte("100")
			if fail {
				req = []byte("100:fail")
			}
			st, err := cc.NewStream(protoCtx(t), &grpc.StreamDesc{ServerStreams: true}, "/"+grpcService+"/ServerStream")
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SendMsg(&req); err != nil {
				t.Fatal(err)
			}
			if err := st.CloseSend(); err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				var out []byte
				if err := st.RecvMsg(&out); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if want := fmt.Sprintf("item %d", i); string(out) != want {
					t.Fatalf("message %d = %q, want %q", i, out, want)
				}
			}
			var out []byte
			err = st.RecvMsg(&out)
			if !fail {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("end of stream: %v, want io.EOF (status OK)", err)
				}
				continue
			}
			s, _ := status.FromError(err)
			if s.Code() != codes.ResourceExhausted || s.Message() != "stopped after 100 items" {
				t.Fatalf("status after the messages: %v %q, want ResourceExhausted %q", s.Code(), s.Message(), "stopped after 100 items")
			}
		}
	})

	t.Run("bidi", func(t *testing.T) {
		st, err := cc.NewStream(protoCtx(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/"+grpcService+"/Bidi")
		if err != nil {
			t.Fatal(err)
		}
		// Lockstep: each reply must arrive before the next message is sent,
		// so a proxy that buffers either direction deadlocks (and times out).
		for i := range 100 {
			in := fmt.Appendf(nil, "msg %d %s", i, strings.Repeat("x", i*10))
			if err := st.SendMsg(&in); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			var out []byte
			if err := st.RecvMsg(&out); err != nil {
				t.Fatalf("recv %d: %v", i, err)
			}
			if want := "re:" + string(in); string(out) != want {
				t.Fatalf("reply %d = %q, want %q", i, trunc(out), trunc([]byte(want)))
			}
		}
		if err := st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var out []byte
		if err := st.RecvMsg(&out); !errors.Is(err, io.EOF) {
			t.Fatalf("end of bidi stream: %v, want io.EOF", err)
		}
		if got := st.Trailer().Get("x-received"); len(got) != 1 || got[0] != "100" {
			t.Fatalf("trailer x-received = %q, want [100]", got)
		}
	})

	t.Run("health", func(t *testing.T) {
		hc := healthpb.NewHealthClient(cc)
		// The generated client's proto messages go through grpcRawCodec
		// (the connection's default), which marshals them as protobuf.
		resp, err := hc.Check(protoCtx(t), &healthpb.HealthCheckRequest{Service: grpcService})
		if err != nil {
			t.Fatalf("health Check: %v", err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health status %v, want SERVING", resp.GetStatus())
		}
		_, err = hc.Check(protoCtx(t), &healthpb.HealthCheckRequest{Service: "no.such.Service"})
		if s, _ := status.FromError(err); s.Code() != codes.NotFound {
			t.Fatalf("health Check of an unknown service: %v, want NotFound", err)
		}

		// Watch is server streaming with updates pushed later: each must
		// arrive while the stream stays open.
		const svc = "proxynow.test.Watched"
		be.health.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
		w, err := hc.Watch(protoCtx(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []healthpb.HealthCheckResponse_ServingStatus{
			healthpb.HealthCheckResponse_SERVING,
			healthpb.HealthCheckResponse_NOT_SERVING,
			healthpb.HealthCheckResponse_SERVING,
		} {
			if i == 1 {
				be.health.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
			} else if i == 2 {
				be.health.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
			}
			got, err := recvWithin(w.Recv, 10*time.Second)
			if err != nil {
				t.Fatalf("Watch update %d: %v", i, err)
			}
			if got.GetStatus() != want {
				t.Fatalf("Watch update %d = %v, want %v", i, got.GetStatus(), want)
			}
		}
	})
}

// recvWithin calls recv and fails after d instead of waiting for the
// test's context.
func recvWithin[T any](recv func() (T, error), d time.Duration) (T, error) {
	type res struct {
		v   T
		err error
	}
	ch := make(chan res, 1)
	go func() {
		v, err := recv()
		ch <- res{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(d):
		var zero T
		return zero, fmt.Errorf("nothing received within %v (update buffered by the proxy?)", d)
	}
}
