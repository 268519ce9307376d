// Command ociimage assembles the fieldcol-gateway container image without a container
// runtime, ko-style: a minimal base layer built here from files (CA certificates, a
// non-root user, the directories the collector writes), a layer of default configs and a
// layer with the static binary, one image per platform, gathered in a multi-arch OCI image
// index. Each platform's image gets its CycloneDX SBOM attached as an OCI 1.1 artifact
// (artifactType application/vnd.cyclonedx+json, subject = the image's manifest), listed in
// the index with the platform unknown/unknown so that runtimes never pick it. The result is
// an OCI image layout (push it with `crane push --index DIR REF`) and the same layout as
// one tar archive.
//
//	ociimage -out dist/image -version 0.1.0 -revision $(git rev-parse HEAD) \
//	  -binary linux/amd64=dist/fieldcol-gateway_linux_amd64 -sbom linux/amd64=dist/sbom_amd64.cdx.json \
//	  -config lb.yaml=distributions/gateway/lb.yaml ...
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed shape: the chart runs /fieldcol-gateway as user 10001.
const (
	binaryPath = "/fieldcol-gateway"
	configDir  = "/etc/fieldcol-gateway"
	storageDir = "/var/lib/fieldcol-gateway"
	uid, gid   = 10001, 10001
	userName   = "fieldcol"
	sbomType   = "application/vnd.cyclonedx+json"
)

// pairs is a repeated -flag key=value.
type pairs [][2]string

func (p *pairs) String() string { return fmt.Sprint(*p) }
func (p *pairs) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return fmt.Errorf("%q: want key=value", s)
	}
	*p = append(*p, [2]string{k, v})
	return nil
}

type options struct {
	out, version, revision, source, caCerts, cmdConfig string
	created                                            time.Time
	binaries, sboms, configs                           pairs
}

func main() {
	var o options
	var created string
	flag.StringVar(&o.out, "out", "dist/image", "output directory: oci/ (the layout) and fieldcol-gateway-VERSION.oci.tar")
	flag.StringVar(&o.version, "version", "", "image version (label org.opencontainers.image.version and the layout's tag)")
	flag.StringVar(&o.revision, "revision", "", "source commit (label org.opencontainers.image.revision)")
	flag.StringVar(&o.source, "source", "https://github.com/fieldcol/fieldcol", "source repository (label org.opencontainers.image.source)")
	flag.StringVar(&created, "created", "", "creation time, RFC 3339 (the commit's time keeps the image reproducible)")
	flag.StringVar(&o.caCerts, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the image")
	flag.StringVar(&o.cmdConfig, "default-config", "lb.yaml", "config file (one of -config) the image runs without arguments")
	flag.Var(&o.binaries, "binary", "os/arch=path of a static fieldcol-gateway binary (repeat per platform)")
	flag.Var(&o.sboms, "sbom", "os/arch=path of that binary's CycloneDX JSON SBOM")
	flag.Var(&o.configs, "config", "name=path of a config file installed in "+configDir)
	flag.Parse()
	var err error
	if o.created, err = time.Parse(time.RFC3339, created); err != nil {
		fatal(fmt.Errorf("-created %q: %w", created, err))
	}
	if err := o.check(); err != nil {
		fatal(err)
	}
	if err := build(o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "ociimage:", err)
	os.Exit(1)
}

func (o options) check() error {
	var errs []error
	if o.version == "" || o.revision == "" {
		errs = append(errs, errors.New("-version and -revision are required"))
	}
	if len(o.binaries) == 0 {
		errs = append(errs, errors.New("at least one -binary os/arch=path is required"))
	}
	for _, b := range o.binaries {
		if lookup(o.sboms, b[0]) == "" {
			errs = append(errs, fmt.Errorf("-binary %s has no -sbom %s=...", b[0], b[0]))
		}
	}
	if lookup(o.configs, o.cmdConfig) == "" {
		errs = append(errs, fmt.Errorf("-default-config %s is not one of the -config files", o.cmdConfig))
	}
	return errors.Join(errs...)
}

func lookup(p pairs, key string) string {
	for _, kv := range p {
		if kv[0] == key {
			return kv[1]
		}
	}
	return ""
}

func build(o options) error {
	labels := map[string]string{
		"org.opencontainers.image.title":       "fieldcol-gateway",
		"org.opencontainers.image.description": "fieldcol gateway collector for the cloud tier (load-balancing and sampler tiers)",
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.revision":    o.revision,
		"org.opencontainers.image.source":      o.source,
		"org.opencontainers.image.created":     o.created.UTC().Format(time.RFC3339),
	}
	base, err := baseLayer(o)
	if err != nil {
		return err
	}
	configs, err := configLayer(o)
	if err != nil {
		return err
	}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, b := range o.binaries {
		platform, err := v1.ParsePlatform(b[0])
		if err != nil {
			return fmt.Errorf("-binary %s: %w", b[0], err)
		}
		img, err := platformImage(o, platform, b[1], labels, base, configs)
		if err != nil {
			return fmt.Errorf("image for %s: %w", b[0], err)
		}
		desc, err := partial.Descriptor(img)
		if err != nil {
			return err
		}
		desc.Platform = platform
		sbom, err := os.ReadFile(lookup(o.sboms, b[0]))
		if err != nil {
			return err
		}
		if !json.Valid(sbom) {
			return fmt.Errorf("-sbom %s: not JSON", b[0])
		}
		art, err := sbomArtifact(sbom, *desc, o.created)
		if err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx,
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: platform}},
			mutate.IndexAddendum{Add: art, Descriptor: v1.Descriptor{
				ArtifactType: sbomType,
				Platform:     &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{
					"org.opencontainers.image.created": labels["org.opencontainers.image.created"],
					// What the SBOM describes, for tools that read the index rather than
					// the artifact's subject (as buildx marks its attestations).
					"vnd.docker.reference.digest": desc.Digest.String(),
					"vnd.docker.reference.type":   "sbom",
				},
			}})
	}
	idx = mutate.Annotations(idx, labels).(v1.ImageIndex)

	dir := filepath.Join(o.out, "oci")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.version,
	})); err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	archive := filepath.Join(o.out, "fieldcol-gateway-"+o.version+".oci.tar")
	if err := tarDir(dir, archive, o.created); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("ociimage: %s (index %s, %d platforms) and %s\n", dir, d, len(o.binaries), archive)
	return nil
}

// platformImage is base + configs + the binary for one platform, with its config.
func platformImage(o options, platform *v1.Platform, binary string, labels map[string]string, base, configs v1.Layer) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	if len(bin) < 4 || string(bin[1:4]) != "ELF" {
		return nil, fmt.Errorf("%s is not an ELF binary", binary)
	}
	binLayer, err := layer([]entry{{path: binaryPath, mode: 0o755, body: bin}}, o.created)
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{CreatedBy: "ociimage: base (CA certificates, user " + userName + ", directories)", Created: v1.Time{Time: o.created}}},
		mutate.Addendum{Layer: configs, History: v1.History{CreatedBy: "ociimage: default configs in " + configDir, Created: v1.Time{Time: o.created}}},
		mutate.Addendum{Layer: binLayer, History: v1.History{CreatedBy: "ociimage: " + binaryPath, Created: v1.Time{Time: o.created}}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Created = v1.Time{Time: o.created}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", uid, gid),
		Entrypoint: []string{binaryPath},
		Cmd:        []string{"--config=" + configDir + "/" + o.cmdConfig},
		WorkingDir: storageDir,
		Labels:     labels,
		ExposedPorts: map[string]struct{}{
			"4317/tcp": {}, "4318/tcp": {}, "13133/tcp": {}, "8888/tcp": {},
		},
		Volumes: map[string]struct{}{storageDir: {}},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, labels).(v1.Image), nil
}

// baseLayer is what a distroless static base holds and nothing more: no shell, no
// package manager.
func baseLayer(o options) (v1.Layer, error) {
	ca, err := os.ReadFile(o.caCerts)
	if err != nil {
		return nil, fmt.Errorf("-ca-certificates: %w (install Debian's ca-certificates)", err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:fieldcol-gateway:%s:/sbin/nologin\n", userName, uid, gid, storageDir)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", userName, gid)
	return layer([]entry{
		{path: "/etc", dir: true, mode: 0o755},
		{path: "/etc/passwd", mode: 0o644, body: []byte(passwd)},
		{path: "/etc/group", mode: 0o644, body: []byte(group)},
		{path: "/etc/nsswitch.conf", mode: 0o644, body: []byte("hosts: files dns\n")},
		// The configs' defaults listen on localhost: a runtime mounts its own /etc/hosts
		// over this one, a bare chroot or systemd-nspawn uses it.
		{path: "/etc/hosts", mode: 0o644, body: []byte("127.0.0.1\tlocalhost\n::1\tlocalhost\n")},
		{path: "/etc/ssl", dir: true, mode: 0o755},
		{path: "/etc/ssl/certs", dir: true, mode: 0o755},
		{path: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: ca},
		{path: "/tmp", dir: true, mode: 0o1777},
		{path: "/var", dir: true, mode: 0o755},
		{path: "/var/lib", dir: true, mode: 0o755},
		{path: storageDir, dir: true, mode: 0o750, owned: true},
	}, o.created)
}

func configLayer(o options) (v1.Layer, error) {
	entries := []entry{{path: configDir, dir: true, mode: 0o755}}
	for _, c := range o.configs {
		body, err := os.ReadFile(c[1])
		if err != nil {
			return nil, fmt.Errorf("-config %s: %w", c[0], err)
		}
		entries = append(entries, entry{path: configDir + "/" + c[0], mode: 0o644, body: body})
	}
	return layer(entries, o.created)
}

// entry is one file or directory of a layer; owned ones belong to the image's user.
type entry struct {
	path  string
	dir   bool
	owned bool
	mode  int64
	body  []byte
}

// layer writes entries as a gzipped OCI layer, with fixed times and owners so that the
// same inputs give the same digest.
func layer(entries []entry, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: strings.TrimPrefix(e.path, "/"), Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX}
		if e.owned {
			h.Uid, h.Gid, h.Uname, h.Gname = uid, gid, userName, userName
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// artifact is an OCI 1.1 artifact manifest: the empty config, one blob, a subject.
type artifact struct {
	manifest []byte
	blob     v1.Layer
}

var emptyConfig = []byte("{}")

func sbomArtifact(sbom []byte, subject v1.Descriptor, created time.Time) (v1.Image, error) {
	blob := static.NewLayer(sbom, sbomType)
	bd, err := partial.Descriptor(blob)
	if err != nil {
		return nil, err
	}
	cfgHash, _, err := v1.SHA256(bytes.NewReader(emptyConfig))
	if err != nil {
		return nil, err
	}
	subject.Platform, subject.ArtifactType = nil, ""
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: cfgHash, Size: int64(len(emptyConfig)), Data: emptyConfig},
		Layers:        []v1.Descriptor{{MediaType: sbomType, Digest: bd.Digest, Size: bd.Size, Annotations: map[string]string{"org.opencontainers.image.title": "sbom.cdx.json"}}},
		Subject:       &subject,
		Annotations:   map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)},
	}
	raw, err := json.Marshal(struct {
		v1.Manifest
		ArtifactType string `json:"artifactType"`
	}{m, sbomType})
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{manifest: raw, blob: blob})
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return emptyConfig, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, _ := a.blob.Digest(); d == h {
		return a.blob, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}

// tarDir writes dir as one tar archive (the OCI layout as an archive, what
// `skopeo copy oci-archive:` and `podman load` read), in a fixed order and with fixed times.
func tarDir(dir, out string, mtime time.Time) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Mode: 0o644, Format: tar.FormatPAX}
		if st.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
		} else {
			h.Typeflag, h.Size = tar.TypeReg, st.Size()
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !st.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := tw.Write(b); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}
