// Command k8sdecode checks rendered Kubernetes manifests (the output of `helm template`)
// without a cluster: it decodes every object of a multi-document YAML stream strictly into
// its k8s.io/api type, so an unknown or misspelt field, a wrong type or an unknown kind
// fails, and prints one line per object: apiVersion, kind and name.
//
//	helm template fg deploy/helm/fieldcol-gateway | k8sdecode
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// types are the kinds the chart renders; anything else is refused rather than waved through.
var types = map[string]func() any{
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                      func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"rbac.authorization.k8s.io/v1/Role":      func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any {
		return &rbacv1.RoleBinding{}
	},
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
}

func main() {
	n, err := check(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8sdecode:", err)
		os.Exit(1)
	}
	if n == 0 {
		fmt.Fprintln(os.Stderr, "k8sdecode: no object in the input")
		os.Exit(1)
	}
}

// check decodes every document of r and writes one line per object to w.
func check(r io.Reader, w io.Writer) (int, error) {
	docs, err := split(r)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, doc := range docs {
		js, err := yaml.YAMLToJSON(doc.body)
		if err != nil {
			return n, fmt.Errorf("document %d (%s): not YAML: %w", i+1, doc.source, err)
		}
		if string(js) == "null" {
			continue
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			return n, fmt.Errorf("document %d (%s): %w", i+1, doc.source, err)
		}
		key := tm.APIVersion + "/" + tm.Kind
		newObj, ok := types[key]
		if !ok {
			return n, fmt.Errorf("document %d (%s): unknown kind %q", i+1, doc.source, key)
		}
		obj := newObj()
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			return n, fmt.Errorf("document %d (%s), %s: %w", i+1, doc.source, key, err)
		}
		meta, ok := obj.(metav1.Object)
		if !ok || meta.GetName() == "" {
			return n, fmt.Errorf("document %d (%s), %s: no metadata.name", i+1, doc.source, key)
		}
		fmt.Fprintf(w, "%s %s %s\n", tm.APIVersion, tm.Kind, meta.GetName())
		n++
	}
	return n, nil
}

type document struct {
	source string // the "# Source:" comment helm writes, for error messages
	body   []byte
}

// split cuts a YAML stream at its "---" lines.
func split(r io.Reader) ([]document, error) {
	var docs []document
	cur := document{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " ") == "---" {
			docs = append(docs, cur)
			cur = document{}
			continue
		}
		if src, ok := strings.CutPrefix(line, "# Source: "); ok {
			cur.source = src
		}
		cur.body = append(cur.body, line...)
		cur.body = append(cur.body, '\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the manifests: %w", err)
	}
	docs = append(docs, cur)
	if len(docs) == 0 {
		return nil, errors.New("empty input")
	}
	return docs, nil
}
