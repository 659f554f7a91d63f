package main

import (
	"strings"
	"testing"
)

const goodSet = `# Source: c/templates/svc.yaml
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  clusterIP: None
  ports: [{name: metrics, port: 7591}]
---
# Source: c/templates/sts.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s}
spec:
  serviceName: s
  selector: {matchLabels: {app: s}}
  template:
    metadata: {labels: {app: s}}
    spec:
      containers:
        - name: c
          image: i
          ports: [{name: metrics, containerPort: 7591}]
          readinessProbe: {httpGet: {path: /healthz, port: metrics}}
          resources: {requests: {cpu: 1500m, memory: 320Mi}}
`

// TestCheckRejects: each mistake the check exists for fails it, with a message naming it.
func TestCheckRejects(t *testing.T) {
	if objs, err := check(strings.NewReader(goodSet)); err != nil || len(objs) != 2 {
		t.Fatalf("a valid set: %d, %v", len(objs), err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown field", "serviceName: s", "serviceName: s\n  replica: 2", `unknown field "replica"`},
		{"wrong type", "containerPort: 7591", "containerPort: seven", "containerPort"},
		{"bad quantity", "memory: 320Mi", "memory: 320 MB", "quantities must match"},
		{"probe port", "port: metrics}}", "port: http}}", `names port "http"`},
		{"selector", "labels: {app: s}}", "labels: {app: t}}", "does not match"},
		{"unknown kind", "kind: Service", "kind: Servise", "no type for it"},
		{"missing service", "serviceName: s", "serviceName: t", "names service t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := check(strings.NewReader(strings.Replace(goodSet, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestScaledObjectChecks(t *testing.T) {
	so := `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: s}
  minReplicaCount: 1
  maxReplicaCount: 6
  triggers:
    - type: kafka
      metadata: {bootstrapServers: "k:9092", consumerGroup: g, topic: t, lagThreshold: "50000"}
`
	for _, tc := range []struct{ name, from, to, want string }{
		{"number where KEDA wants a string", `lagThreshold: "50000"`, "lagThreshold: 50000", "triggers.metadata of type string"},
		{"misspelt metadata", "topic: t", "topics: t", `unknown metadata key "topics"`},
		{"min above max", "minReplicaCount: 1", "minReplicaCount: 7", "above maxReplicaCount"},
		{"target not rendered", "name: s}\n  min", "name: x}\n  min", "scales StatefulSet/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := check(strings.NewReader(goodSet + "---\n" + strings.Replace(so, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, err := check(strings.NewReader(goodSet + "---\n" + so)); err != nil {
		t.Fatalf("a valid ScaledObject: %v", err)
	}
}
