package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

// S3Store is versitygw serving a temporary directory as S3 over TLS on a loopback port.
type S3Store struct {
	URL                  string // https://127.0.0.1:port
	CAFile               string // its certificate, which is its own CA (restic --cacert)
	AccessKey, SecretKey string // its root credentials
}

// StartS3Store runs .tools/versitygw (make .tools/versitygw builds it) on a free
// port and waits until it serves TLS.
func StartS3Store(t testing.TB) *S3Store { return S3StoreSpec{}.Start(t) }

// S3StoreSpec is how to start versitygw when the defaults of StartS3Store do not fit.
type S3StoreSpec struct {
	// Via runs versitygw through a command, e.g. nsenter into another network namespace.
	Via []string
	// Dial reaches the store's address (default: net.Dial), for the readiness check.
	Dial func(network, addr string) (net.Conn, error)
}

// Start runs the store and waits until it serves TLS.
func (spec S3StoreSpec) Start(t testing.TB) *S3Store {
	t.Helper()
	bin := Tool(t, "versitygw")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	require.NoError(t, os.Mkdir(data, 0o700))
	cert, key := selfSignedCert(t, dir)
	pemBytes, err := os.ReadFile(cert)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pemBytes))
	dial := spec.Dial
	if dial == nil {
		dial = net.Dial
	}
	s := &S3Store{CAFile: cert, AccessKey: "fieldcol-e2e", SecretKey: "e2e-secret-5b1d93c0"}
	testproc.Retry(t, func(ports *testproc.Ports) (*testproc.Process, error) {
		addr := ports.Addr()
		s.URL = "https://" + addr
		name, args := bin, []string{"--port", addr, "--cert", cert, "--key", key, "--quiet", "posix", data}
		if len(spec.Via) > 0 {
			name, args = spec.Via[0], append(append(append([]string{}, spec.Via[1:]...), bin), args...)
		}
		// The root keys go through the environment, not the command line.
		p := testproc.Start(t, name, args,
			"ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
		return p, waitTLS(p, addr, pool, dial, 30*time.Second)
	})
	return s
}

// waitTLS dials addr until it completes a TLS handshake with a certificate of pool.
func waitTLS(p *testproc.Process, addr string, pool *x509.CertPool, dial func(network, addr string) (net.Conn, error), timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if p.Exited() {
			return fmt.Errorf("%s exited before it served TLS on %s:\n%s", p.Name, addr, p.Log())
		}
		raw, err := dial("tcp", addr)
		if err != nil {
			continue
		}
		host, _, _ := net.SplitHostPort(addr)
		conn := tls.Client(raw, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: host})
		err = conn.Handshake()
		_ = conn.Close()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s did not serve TLS on %s within %s", p.Name, addr, timeout)
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key; the certificate is also
// the CA that restic is given with --cacert.
func selfSignedCert(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "store.pem"), filepath.Join(dir, "store-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}
