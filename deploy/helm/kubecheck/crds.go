package main

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The custom resources the chart renders, field for field as their CRDs define them: KEDA
// v2's keda.sh/v1alpha1 ScaledObject and TriggerAuthentication (apis/keda/v1alpha1 of
// kedacore/keda), and the Prometheus Operator's monitoring.coreos.com/v1 ServiceMonitor
// (the fields used here and their neighbours). Importing those modules would pull in the
// whole of KEDA and client-go for a few structs.

type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion             string `json:"apiVersion,omitempty"`
			Kind                   string `json:"kind,omitempty"`
			Name                   string `json:"name"`
			EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
		} `json:"scaleTargetRef"`
		PollingInterval       *int32         `json:"pollingInterval,omitempty"`
		InitialCooldownPeriod *int32         `json:"initialCooldownPeriod,omitempty"`
		CooldownPeriod        *int32         `json:"cooldownPeriod,omitempty"`
		IdleReplicaCount      *int32         `json:"idleReplicaCount,omitempty"`
		MinReplicaCount       *int32         `json:"minReplicaCount,omitempty"`
		MaxReplicaCount       *int32         `json:"maxReplicaCount,omitempty"`
		Advanced              map[string]any `json:"advanced,omitempty"`
		Fallback              *struct {
			FailureThreshold int32  `json:"failureThreshold"`
			Replicas         int32  `json:"replicas"`
			Behavior         string `json:"behavior,omitempty"`
		} `json:"fallback,omitempty"`
		Triggers []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
			MetricType string `json:"metricType,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

// kafkaMetadata are the kafka scaler's metadata keys (KEDA's scalers/kafka docs); a
// misspelt key is silently ignored by KEDA, so it is an error here.
var kafkaMetadata = []string{
	"bootstrapServers", "bootstrapServersFromEnv", "consumerGroup", "consumerGroupFromEnv", "topic", "topicFromEnv",
	"lagThreshold", "activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers",
	"scaleToZeroOnInvalidOffset", "excludePersistentLag", "limitToPartitionsWithLag",
	"ensureEvenDistributionOfPartitions", "partitionLimitation", "version", "sasl", "tls",
	"unsafeSsl", "saslTokenProvider",
}

func (s *scaledObject) check() error {
	sp := s.Spec
	if sp.ScaleTargetRef.Name == "" {
		return fmt.Errorf("spec.scaleTargetRef.name is empty")
	}
	if sp.MinReplicaCount != nil && sp.MaxReplicaCount != nil && *sp.MinReplicaCount > *sp.MaxReplicaCount {
		return fmt.Errorf("minReplicaCount %d above maxReplicaCount %d", *sp.MinReplicaCount, *sp.MaxReplicaCount)
	}
	if len(sp.Triggers) == 0 {
		return fmt.Errorf("no triggers")
	}
	for _, t := range sp.Triggers {
		if t.Type != "kafka" {
			continue
		}
		for k := range t.Metadata {
			if !slices.Contains(kafkaMetadata, k) {
				return fmt.Errorf("kafka trigger: unknown metadata key %q", k)
			}
		}
		for _, k := range []string{"bootstrapServers", "consumerGroup", "lagThreshold"} {
			if t.Metadata[k] == "" {
				return fmt.Errorf("kafka trigger: %s is empty", k)
			}
		}
	}
	return nil
}

type triggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef,omitempty"`
		Env []struct {
			Parameter     string `json:"parameter"`
			Name          string `json:"name"`
			ContainerName string `json:"containerName,omitempty"`
		} `json:"env,omitempty"`
	} `json:"spec"`
}

type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port,omitempty"`
			TargetPort    any    `json:"targetPort,omitempty"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
			HonorLabels   bool   `json:"honorLabels,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}
