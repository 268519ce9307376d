package gateway

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

// There is no cluster here: the chart is checked with helm lint and helm template, every
// rendered object is decoded strictly into its k8s.io/api type (tools/k8sdecode), and the
// rendered collector configs are validated by the gateway binary.

const chartNamespace = "fleet-obs"

// helmCmd runs helm with its cache and config in the test's directory, not the user's home.
func helmCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(harness.Tool(t, "helm"), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	return cmd
}

// render runs helm template on the chart with the given --set values.
func render(t *testing.T, sets ...string) (string, error) {
	t.Helper()
	args := []string{"template", "fg", harness.Shipped("deploy/helm/fieldcol-gateway"), "--namespace", chartNamespace}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	var stdout, stderr bytes.Buffer
	cmd := helmCmd(t, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", errors.New(stderr.String())
	}
	return stdout.String(), nil
}

// objects decodes a rendered stream into generic maps, keyed by "Kind/name".
func objects(t *testing.T, manifests string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(manifests))
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if obj == nil {
			continue
		}
		name := dig(obj, "metadata", "name").(string)
		out[obj["kind"].(string)+"/"+name] = obj
	}
	return out
}

// dig walks nested maps and lists (a string is a map key, an int a list index).
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// env returns a container's environment as name -> entry.
func env(container any) map[string]map[string]any {
	out := map[string]map[string]any{}
	list, _ := dig(container, "env").([]any)
	for _, e := range list {
		m := e.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func TestGatewayChart(t *testing.T) {
	k8sdecode := harness.Tool(t, "k8sdecode")

	t.Run("the chart ships the distribution's configs unchanged", func(t *testing.T) {
		for _, f := range []string{"lb.yaml", "sampler.yaml"} {
			want, err := os.ReadFile(harness.Shipped("distributions/gateway/" + f))
			require.NoError(t, err)
			got, err := os.ReadFile(harness.Shipped("deploy/helm/fieldcol-gateway/files/" + f))
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got), "deploy/helm/fieldcol-gateway/files/%s differs from distributions/gateway/%s: copy it over", f, f)
		}
	})

	t.Run("helm lint", func(t *testing.T) {
		out, err := helmCmd(t, "lint", "--strict", harness.Shipped("deploy/helm/fieldcol-gateway"), "--set", "token.existingSecret=fleet-token").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "0 chart(s) failed")
	})

	t.Run("a token is required", func(t *testing.T) {
		_, err := render(t)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "token.existingSecret")
	})

	manifests, err := render(t, "token.value=s3cret")
	require.NoError(t, err)

	t.Run("every object decodes strictly into its k8s.io/api type", func(t *testing.T) {
		cmd := exec.Command(k8sdecode)
		cmd.Stdin = strings.NewReader(manifests)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		want := []string{
			"v1 ServiceAccount fg-fieldcol-gateway",
			"v1 Secret fg-fieldcol-gateway-token",
			"v1 ConfigMap fg-fieldcol-gateway",
			"rbac.authorization.k8s.io/v1 Role fg-fieldcol-gateway-lb",
			"rbac.authorization.k8s.io/v1 RoleBinding fg-fieldcol-gateway-lb",
			"v1 Service fg-fieldcol-gateway-lb",
			"v1 Service fg-fieldcol-gateway-sampler-headless",
			"v1 Service fg-fieldcol-gateway-lb-headless",
			"apps/v1 StatefulSet fg-fieldcol-gateway-lb",
			"apps/v1 StatefulSet fg-fieldcol-gateway-sampler",
			"autoscaling/v2 HorizontalPodAutoscaler fg-fieldcol-gateway-lb",
			"autoscaling/v2 HorizontalPodAutoscaler fg-fieldcol-gateway-sampler",
			"policy/v1 PodDisruptionBudget fg-fieldcol-gateway-lb",
			"policy/v1 PodDisruptionBudget fg-fieldcol-gateway-sampler",
			"networking.k8s.io/v1 NetworkPolicy fg-fieldcol-gateway-sampler",
		}
		assert.ElementsMatch(t, want, strings.Split(strings.TrimSpace(string(out)), "\n"))
	})

	t.Run("a misspelt field is refused", func(t *testing.T) {
		bad := strings.Replace(manifests, "terminationGracePeriodSeconds:", "terminationGracePeriodSecond:", 1)
		require.NotEqual(t, manifests, bad)
		cmd := exec.Command(k8sdecode)
		cmd.Stdin = strings.NewReader(bad)
		out, err := cmd.CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), `unknown field "terminationGracePeriodSecond"`)
	})

	objs := objects(t, manifests)

	t.Run("the rendered collector configs validate", func(t *testing.T) {
		data := dig(objs["ConfigMap/fg-fieldcol-gateway"], "data").(map[string]any)
		dir := t.TempDir()
		for name, body := range data {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body.(string)), 0o600))
		}
		for _, configs := range [][]string{{"lb.yaml", "lb-k8s.yaml"}, {"sampler.yaml"}} {
			args := []string{"validate"}
			for _, c := range configs {
				args = append(args, "--config", filepath.Join(dir, c))
			}
			cmd := exec.Command(harness.Binary(t, "fieldcol-gateway"), args...)
			cmd.Env = append(os.Environ(), "FIELDCOL_GATEWAY_TOKEN=s3cret", "FIELDCOL_STORAGE_DIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "validate %v:\n%s", configs, out)
		}
		// The load balancers resolve the headless Service of the samplers, in the release's
		// namespace, through the Kubernetes API and not the static list.
		var k8s map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(data["lb-k8s.yaml"].(string)), &k8s))
		for _, e := range []string{"load_balancing/traces", "load_balancing/metrics", "load_balancing/logs"} {
			resolver := dig(k8s, "exporters", e, "resolver").(map[string]any)
			assert.Nil(t, resolver["static"], e)
			assert.Equal(t, "fg-fieldcol-gateway-sampler-headless."+chartNamespace, dig(resolver, "k8s", "service"), e)
		}
		assert.Equal(t, "None", dig(objs["Service/fg-fieldcol-gateway-sampler-headless"], "spec", "clusterIP"))
	})

	t.Run("the k8s resolver may watch EndpointSlices", func(t *testing.T) {
		rule := dig(objs["Role/fg-fieldcol-gateway-lb"], "rules", 0)
		assert.Equal(t, []any{"discovery.k8s.io"}, dig(rule, "apiGroups"))
		assert.Equal(t, []any{"endpointslices"}, dig(rule, "resources"))
		assert.ElementsMatch(t, []any{"get", "list", "watch"}, dig(rule, "verbs"))
		sa := dig(objs["StatefulSet/fg-fieldcol-gateway-lb"], "spec", "template", "spec", "serviceAccountName")
		assert.Equal(t, sa, dig(objs["RoleBinding/fg-fieldcol-gateway-lb"], "subjects", 0, "name"))
	})

	for _, tier := range []string{"lb", "sampler"} {
		t.Run(tier+" statefulset", func(t *testing.T) {
			dep := objs["StatefulSet/fg-fieldcol-gateway-"+tier]
			require.NotNil(t, dep)
			c := dig(dep, "spec", "template", "spec", "containers", 0)
			e := env(c)
			limit := dig(c, "resources", "limits", "memory").(string)
			assert.Equal(t, strconv.FormatInt(quantityBytes(t, limit)*80/100, 10), e["GOMEMLIMIT"]["value"], "GOMEMLIMIT is 80 %% of the %s limit", limit)
			assert.NotNil(t, dig(c, "resources", "requests", "cpu"))
			for _, probe := range []string{"livenessProbe", "readinessProbe"} {
				assert.Equal(t, "/", dig(c, probe, "httpGet", "path"), probe)
				assert.Equal(t, "health", dig(c, probe, "httpGet", "port"), probe)
			}
			assert.Equal(t, "$(POD_IP):13133", e["FIELDCOL_HEALTH_ENDPOINT"]["value"])

			hpa := objs["HorizontalPodAutoscaler/fg-fieldcol-gateway-"+tier]
			require.NotNil(t, hpa)
			assert.Equal(t, "fg-fieldcol-gateway-"+tier, dig(hpa, "spec", "scaleTargetRef", "name"))
			var resources []any
			for _, m := range dig(hpa, "spec", "metrics").([]any) {
				resources = append(resources, dig(m, "resource", "name"))
			}
			assert.ElementsMatch(t, []any{"cpu", "memory"}, resources)
			assert.Nil(t, dig(dep, "spec", "replicas"), "the HPA owns the replica count")

			pdb := objs["PodDisruptionBudget/fg-fieldcol-gateway-"+tier]
			require.NotNil(t, pdb)
			assert.Equal(t, dig(dep, "spec", "selector", "matchLabels"), dig(pdb, "spec", "selector", "matchLabels"))
		})
	}

	t.Run("the token comes from the Secret", func(t *testing.T) {
		c := dig(objs["StatefulSet/fg-fieldcol-gateway-lb"], "spec", "template", "spec", "containers", 0)
		ref := dig(env(c)["FIELDCOL_GATEWAY_TOKEN"], "valueFrom", "secretKeyRef")
		assert.Equal(t, "fg-fieldcol-gateway-token", dig(ref, "name"))
		assert.Equal(t, "token", dig(ref, "key"))
		assert.NotNil(t, dig(objs["Secret/fg-fieldcol-gateway-token"], "data", "token"))
		assert.NotContains(t, manifests, "s3cret", "the token in clear in a manifest")

		existing, err := render(t, "token.existingSecret=fleet-token")
		require.NoError(t, err)
		o := objects(t, existing)
		assert.NotContains(t, o, "Secret/fg-fieldcol-gateway-token")
		c = dig(o["StatefulSet/fg-fieldcol-gateway-lb"], "spec", "template", "spec", "containers", 0)
		assert.Equal(t, "fleet-token", dig(env(c)["FIELDCOL_GATEWAY_TOKEN"], "valueFrom", "secretKeyRef", "name"))
	})

	t.Run("the load balancers serve TLS from a Secret", func(t *testing.T) {
		spec := dig(objs["StatefulSet/fg-fieldcol-gateway-lb"], "spec", "template", "spec")
		mounts := map[string]string{}
		for _, m := range dig(spec, "containers", 0, "volumeMounts").([]any) {
			mounts[dig(m, "name").(string)] = dig(m, "mountPath").(string)
		}
		// lb.yaml's default certificate paths, the keys of a kubernetes.io/tls Secret.
		assert.Equal(t, "/etc/fieldcol-gateway/tls", mounts["tls"])
		var secret any
		for _, v := range dig(spec, "volumes").([]any) {
			if dig(v, "name") == "tls" {
				secret = dig(v, "secret", "secretName")
			}
		}
		assert.Equal(t, "fg-fieldcol-gateway-tls", secret)
		assert.NotContains(t, env(dig(spec, "containers", 0)), "FIELDCOL_TLS_CLIENT_CA_FILE", "mTLS is off by default")

		out, err := render(t, "token.value=x", "tls.secretName=fleet-door", "tls.clientAuth=true")
		require.NoError(t, err)
		c := dig(objects(t, out)["StatefulSet/fg-fieldcol-gateway-lb"], "spec", "template", "spec", "containers", 0)
		assert.Equal(t, "/etc/fieldcol-gateway/tls/ca.crt", env(c)["FIELDCOL_TLS_CLIENT_CA_FILE"]["value"])
		assert.Contains(t, out, "secretName: fleet-door")
	})

	t.Run("a leaving sampler drains before SIGTERM", func(t *testing.T) {
		spec := dig(objs["StatefulSet/fg-fieldcol-gateway-sampler"], "spec", "template", "spec")
		c := dig(spec, "containers", 0)
		quiet := drainFlag(t, c, "--quiet=")
		wait := env(c)["FIELDCOL_DECISION_WAIT"]["value"].(string)
		waitSeconds, err := strconv.Atoi(strings.TrimSuffix(wait, "s"))
		require.NoError(t, err, "decision wait %q", wait)
		assert.Greater(t, quiet, waitSeconds, "drain quiet period vs decision_wait")
		assert.Greater(t, dig(spec, "terminationGracePeriodSeconds").(int), drainFlag(t, c, "--timeout="))
	})

	for _, tier := range []string{"lb", "sampler"} {
		t.Run(tier+" queues live on a volume of their own that outlives the pod", func(t *testing.T) {
			sts := objs["StatefulSet/fg-fieldcol-gateway-"+tier]
			spec := dig(sts, "spec")
			claim := dig(spec, "volumeClaimTemplates", 0)
			assert.Equal(t, "queue", dig(claim, "metadata", "name"))
			assert.NotEmpty(t, dig(claim, "spec", "resources", "requests", "storage"))
			assert.Nil(t, dig(claim, "spec", "storageClassName"), "the cluster's default class unless set")
			var mounted bool
			for _, m := range dig(spec, "template", "spec", "containers", 0, "volumeMounts").([]any) {
				mounted = mounted || (dig(m, "name") == "queue" && dig(m, "mountPath") == "/var/lib/fieldcol-gateway")
			}
			assert.True(t, mounted, "the claim is mounted where FIELDCOL_STORAGE_DIR points")
			for _, v := range dig(spec, "template", "spec", "volumes").([]any) {
				assert.NotEqual(t, "queue", dig(v, "name"), "no emptyDir or other volume shadows the claim")
			}
			// A scale-down keeps the claim, so a pod of the same ordinal drains it later.
			assert.Equal(t, "Retain", dig(spec, "persistentVolumeClaimRetentionPolicy", "whenScaled"))
			assert.Equal(t, "Retain", dig(spec, "persistentVolumeClaimRetentionPolicy", "whenDeleted"))
			assert.NotEmpty(t, dig(objs["Service/"+dig(spec, "serviceName").(string)], "spec"), "the governing Service exists")
			assert.Equal(t, "None", dig(objs["Service/"+dig(spec, "serviceName").(string)], "spec", "clusterIP"))
			// The preStop drain needs no shell: the image has none.
			assert.Equal(t, []any{"/fieldcol-gateway", "drain"}, dig(spec, "template", "spec", "containers", 0, "lifecycle", "preStop", "exec", "command").([]any)[:2])
			assert.Equal(t, "StatefulSet", dig(objs["HorizontalPodAutoscaler/fg-fieldcol-gateway-"+tier], "spec", "scaleTargetRef", "kind"))
		})
	}

	t.Run("storage class, size and retention are values", func(t *testing.T) {
		out, err := render(t, "token.value=x", "sampler.persistence.storageClassName=fast-ssd", "sampler.persistence.size=50Gi",
			"lb.persistence.retainWhenScaled=false")
		require.NoError(t, err)
		o := objects(t, out)
		claim := dig(o["StatefulSet/fg-fieldcol-gateway-sampler"], "spec", "volumeClaimTemplates", 0, "spec")
		assert.Equal(t, "fast-ssd", dig(claim, "storageClassName"))
		assert.Equal(t, "50Gi", dig(claim, "resources", "requests", "storage"))
		assert.Equal(t, "Delete", dig(o["StatefulSet/fg-fieldcol-gateway-lb"], "spec", "persistentVolumeClaimRetentionPolicy", "whenScaled"))
	})

	t.Run("the HPAs can scale on queue size per pod, served by prometheus-adapter", func(t *testing.T) {
		out, err := render(t, "token.value=x", "lb.autoscaling.queueSize.enabled=true", "sampler.autoscaling.queueSize.enabled=true",
			"prometheusAdapter.rules.enabled=true")
		require.NoError(t, err)
		cmd := exec.Command(k8sdecode)
		cmd.Stdin = strings.NewReader(out)
		decoded, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", decoded)
		o := objects(t, out)
		for tier, want := range map[string]string{"lb": "500", "sampler": "1000"} {
			var pods any
			for _, m := range dig(o["HorizontalPodAutoscaler/fg-fieldcol-gateway-"+tier], "spec", "metrics").([]any) {
				if dig(m, "type") == "Pods" {
					pods = dig(m, "pods")
				}
			}
			require.NotNil(t, pods, tier)
			assert.Equal(t, "fieldcol_exporter_queue_size", dig(pods, "metric", "name"))
			assert.Equal(t, want, dig(pods, "target", "averageValue"))
		}
		// The adapter rule serves exactly the name the HPAs ask for, per pod.
		var rules struct {
			Rules []struct {
				SeriesQuery string `yaml:"seriesQuery"`
				Resources   struct {
					Overrides map[string]map[string]string `yaml:"overrides"`
				} `yaml:"resources"`
				Name struct {
					As string `yaml:"as"`
				} `yaml:"name"`
			} `yaml:"rules"`
		}
		cfg := dig(o["ConfigMap/fg-fieldcol-gateway-prometheus-adapter-rules"], "data", "config.yaml")
		require.NotNil(t, cfg)
		require.NoError(t, yaml.Unmarshal([]byte(cfg.(string)), &rules))
		require.Len(t, rules.Rules, 1)
		assert.Equal(t, "fieldcol_exporter_queue_size", rules.Rules[0].Name.As)
		assert.Contains(t, rules.Rules[0].SeriesQuery, "otelcol_exporter_queue_size")
		assert.Equal(t, "pod", rules.Rules[0].Resources.Overrides["pod"]["resource"])
		assert.NotContains(t, manifests, "prometheus-adapter-rules", "off by default")
	})

	t.Run("without autoscaling the replica counts are set", func(t *testing.T) {
		out, err := render(t, "token.value=x", "lb.autoscaling.enabled=false", "sampler.autoscaling.enabled=false", "sampler.replicaCount=5")
		require.NoError(t, err)
		o := objects(t, out)
		assert.NotContains(t, o, "HorizontalPodAutoscaler/fg-fieldcol-gateway-lb")
		assert.NotContains(t, o, "HorizontalPodAutoscaler/fg-fieldcol-gateway-sampler")
		assert.Equal(t, 2, dig(o["StatefulSet/fg-fieldcol-gateway-lb"], "spec", "replicas"))
		assert.Equal(t, 5, dig(o["StatefulSet/fg-fieldcol-gateway-sampler"], "spec", "replicas"))
	})

	t.Run("a memory limit GOMEMLIMIT cannot be derived from is refused", func(t *testing.T) {
		_, err := render(t, "token.value=x", "lb.resources.limits.memory=1.5Gi")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "GOMEMLIMIT")
	})
}

// drainFlag is the number of seconds of a --quiet= or --timeout= flag of a container's
// preStop drain.
func drainFlag(t *testing.T, container any, flag string) int {
	t.Helper()
	for _, a := range dig(container, "lifecycle", "preStop", "exec", "command").([]any) {
		if v, ok := strings.CutPrefix(a.(string), flag); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(v, "s"))
			require.NoError(t, err, "%s%s", flag, v)
			return n
		}
	}
	t.Fatalf("no %s in the preStop drain", flag)
	return 0
}

// quantityBytes reads the memory quantities the chart uses (Ki, Mi, Gi, Ti or bytes).
func quantityBytes(t *testing.T, q string) int64 {
	t.Helper()
	for i, suffix := range []string{"Ki", "Mi", "Gi", "Ti"} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			require.NoError(t, err, "quantity %q", q)
			return v << (10 * (i + 1))
		}
	}
	v, err := strconv.ParseInt(q, 10, 64)
	require.NoError(t, err, "quantity %q", q)
	return v
}
