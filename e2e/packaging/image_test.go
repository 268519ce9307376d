package packaging

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
	"github.com/fieldcol/fieldcol/internal/testproc"
)

// ociDescriptor, ociIndex, ociManifest and imageConfig are the parts of the OCI image spec
// the test reads, decoded here rather than with the library that wrote them.
type ociDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
	Platform     *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type ociIndex struct {
	MediaType   string            `json:"mediaType"`
	Manifests   []ociDescriptor   `json:"manifests"`
	Annotations map[string]string `json:"annotations"`
}

type ociManifest struct {
	Config       ociDescriptor   `json:"config"`
	Layers       []ociDescriptor `json:"layers"`
	Subject      *ociDescriptor  `json:"subject"`
	ArtifactType string          `json:"artifactType"`
}

type imageConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Env        []string          `json:"Env"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(harness.ReadFile(t, path), v), "%s", path)
}

func blob(layoutDir, digest string) string {
	algo, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(layoutDir, "blobs", algo, hex)
}

// The gateway's OCI image (make image-test: the linux/amd64 half of make image) is read by
// skopeo, an OCI client this repository did not write, unpacked with tar, checked (non-root
// user, exec-form entrypoint, no shell, labels, an SBOM attached to each platform's image),
// and its entrypoint run from the unpacked root as the image's user in a fresh mount
// namespace until health_check answers and it takes a span over TLS.
func TestGatewayImage(t *testing.T) {
	layoutDir := filepath.Join(harness.Root(), "dist", "image-test", "oci")
	if _, err := os.Stat(filepath.Join(layoutDir, "index.json")); err != nil {
		msg := fmt.Sprintf("%s is not built (make image-test): %v", layoutDir, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	skopeo := testproc.LookPath(t, "skopeo", "scripts/ensure-debs.sh installs it")

	var top ociIndex
	readJSON(t, filepath.Join(layoutDir, "index.json"), &top)
	require.Len(t, top.Manifests, 1, "the layout holds one image index")
	tag := top.Manifests[0].Annotations["org.opencontainers.image.ref.name"]
	require.NotEmpty(t, tag)
	var idx ociIndex
	readJSON(t, blob(layoutDir, top.Manifests[0].Digest), &idx)
	assert.Equal(t, "application/vnd.oci.image.index.v1+json", idx.MediaType)
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{40}$`), idx.Annotations["org.opencontainers.image.revision"])
	assert.Equal(t, tag, idx.Annotations["org.opencontainers.image.version"])

	t.Run("every platform's image has a CycloneDX SBOM attached", func(t *testing.T) {
		images, sboms := map[string]string{}, map[string]string{}
		for _, d := range idx.Manifests {
			require.NotNil(t, d.Platform, d.Digest)
			if d.ArtifactType == "application/vnd.cyclonedx+json" {
				assert.Equal(t, "unknown", d.Platform.OS, "runtimes must never pick the SBOM")
				var m ociManifest
				readJSON(t, blob(layoutDir, d.Digest), &m)
				require.NotNil(t, m.Subject)
				require.Len(t, m.Layers, 1)
				var bom struct {
					BOMFormat  string `json:"bomFormat"`
					Components []struct {
						Name    string `json:"name"`
						Version string `json:"version"`
					} `json:"components"`
				}
				readJSON(t, blob(layoutDir, m.Layers[0].Digest), &bom)
				assert.Equal(t, "CycloneDX", bom.BOMFormat)
				var names []string
				for _, c := range bom.Components {
					names = append(names, c.Name+"@"+c.Version)
				}
				assert.Contains(t, names, "go.opentelemetry.io/collector/receiver/otlpreceiver@v0.159.0")
				sboms[m.Subject.Digest] = d.Digest
				continue
			}
			images[d.Platform.OS+"/"+d.Platform.Architecture] = d.Digest
		}
		require.Contains(t, images, "linux/amd64")
		for platform, digest := range images {
			assert.Contains(t, sboms, digest, "SBOM of %s", platform)
		}
	})

	t.Run("the archive holds the same index", func(t *testing.T) {
		archive := filepath.Join(filepath.Dir(layoutDir), "fieldcol-gateway-"+tag+".oci.tar")
		out, err := exec.Command(skopeo, "inspect", "--raw", "oci-archive:"+archive+":"+tag).Output()
		require.NoError(t, err, "skopeo inspect %s", archive)
		assert.JSONEq(t, string(harness.ReadFile(t, blob(layoutDir, top.Manifests[0].Digest))), string(out))
	})

	// skopeo picks the linux/amd64 image from the index and checks every digest it copies.
	copied := t.TempDir()
	out, err := exec.Command(skopeo, "copy", "--override-os", "linux", "--override-arch", "amd64",
		"oci:"+layoutDir+":"+tag, "dir:"+copied).CombinedOutput()
	require.NoError(t, err, "skopeo copy:\n%s", out)
	var m ociManifest
	readJSON(t, filepath.Join(copied, "manifest.json"), &m)
	var cfg imageConfig
	readJSON(t, filepath.Join(copied, strings.TrimPrefix(m.Config.Digest, "sha256:")), &cfg)

	t.Run("the config runs a non-root user's exec-form entrypoint", func(t *testing.T) {
		assert.Equal(t, "linux", cfg.OS)
		assert.Equal(t, "amd64", cfg.Architecture)
		assert.Equal(t, "10001:10001", cfg.Config.User, "the chart's runAsUser")
		assert.Equal(t, []string{"/fieldcol-gateway"}, cfg.Config.Entrypoint)
		assert.Equal(t, []string{"--config=/etc/fieldcol-gateway/lb.yaml"}, cfg.Config.Cmd)
		assert.Equal(t, tag, cfg.Config.Labels["org.opencontainers.image.version"])
		assert.Equal(t, idx.Annotations["org.opencontainers.image.revision"], cfg.Config.Labels["org.opencontainers.image.revision"])
	})

	// The layers, in order, with the host's tar: owners and modes as the image says.
	root := t.TempDir()
	for _, l := range m.Layers {
		assert.Equal(t, "application/vnd.oci.image.layer.v1.tar+gzip", l.MediaType)
		out, err := exec.Command("tar", "-xzf", filepath.Join(copied, strings.TrimPrefix(l.Digest, "sha256:")),
			"-C", root, "--same-owner", "--numeric-owner").CombinedOutput()
		require.NoError(t, err, "tar:\n%s", out)
	}

	t.Run("the root holds no shell, a CA bundle and the user's storage", func(t *testing.T) {
		for _, sh := range []string{"bin/sh", "bin/bash", "usr/bin/sh", "bin/busybox"} {
			assert.NoFileExists(t, filepath.Join(root, sh))
		}
		assert.FileExists(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
		assert.Contains(t, string(harness.ReadFile(t, filepath.Join(root, "etc/passwd"))), ":10001:10001:")
		for _, c := range []string{"lb.yaml", "sampler.yaml", "config.yaml"} {
			assert.Equal(t, harness.ReadFile(t, harness.Shipped("distributions/gateway/"+c)),
				harness.ReadFile(t, filepath.Join(root, "etc/fieldcol-gateway", c)), c)
		}
		out, err := exec.Command("stat", "-c", "%u:%g %a", filepath.Join(root, "var/lib/fieldcol-gateway")).Output()
		require.NoError(t, err)
		assert.Equal(t, "10001:10001 750", strings.TrimSpace(string(out)))
	})

	t.Run("the entrypoint runs from the unpacked root and answers health", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("chroot and a mount namespace need root (make test runs as root)")
		}
		// What the runtime and the chart add: /proc, and the TLS Secret where lb.yaml reads it.
		require.NoError(t, os.MkdirAll(filepath.Join(root, "proc"), 0o555))
		pki := harness.NewPKI(t, "image-test-ca")
		tlsDir := filepath.Join(root, "etc/fieldcol-gateway/tls")
		require.NoError(t, os.MkdirAll(tlsDir, 0o755))
		for src, dst := range map[string]string{pki.CertFile: "tls.crt", pki.KeyFile: "tls.key"} {
			p := filepath.Join(tlsDir, dst)
			require.NoError(t, os.WriteFile(p, harness.ReadFile(t, src), 0o640))
			require.NoError(t, os.Chown(p, 0, 10001))
		}
		// unshare gives the process a mount namespace of its own (the /proc mount goes with
		// it); exec keeps one process from the shell to the collector, so that SIGTERM
		// reaches the collector.
		argv := append(append([]string{}, cfg.Config.Entrypoint...), cfg.Config.Cmd...)
		script := filepath.Join(t.TempDir(), "run-image")
		require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(
			"#!/bin/sh\nexec unshare --mount --propagation private sh -c 'mount -t proc proc %[1]s/proc && exec chroot --userspec=%[2]s %[1]s \"$@\"' run-image %[3]s\n",
			root, cfg.Config.User, shellQuote(argv))), 0o755))
		const token = "image-test-token"
		c := harness.CollectorSpec{Bin: script, Env: []string{"FIELDCOL_GATEWAY_TOKEN=" + token}}.Start(t)

		status := string(harness.ReadFile(t, fmt.Sprintf("/proc/%d/status", c.Proc.Pid())))
		assert.Regexp(t, regexp.MustCompile(`(?m)^Uid:\s+10001\s`), status, "the collector runs as the image's user")

		// It serves TLS with the mounted certificate and queues under its own storage dir.
		client, err := otlpsink.DialTLS(c.OTLPGRPC, pki.ClientTLS(false))
		require.NoError(t, err)
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		require.NoError(t, client.SendTraces(ctx, harness.SampleTraces(t.Name())))
		entries, err := os.ReadDir(filepath.Join(root, "var/lib/fieldcol-gateway"))
		require.NoError(t, err)
		assert.NotEmpty(t, entries, "the persistent queue in the image's storage directory")
		c.Stop(t)
	})
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
