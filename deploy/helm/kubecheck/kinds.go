package main

import (
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// kinds maps apiVersion/kind to a new value of its Go type.
var kinds = map[string]func() any{
	"v1/ConfigMap":                            func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                               func() any { return new(corev1.Secret) },
	"v1/Service":                              func() any { return new(corev1.Service) },
	"apps/v1/StatefulSet":                     func() any { return new(statefulSet) },
	"policy/v1/PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"keda.sh/v1alpha1/ScaledObject":           func() any { return new(scaledObject) },
	"keda.sh/v1alpha1/TriggerAuthentication":  func() any { return new(triggerAuthentication) },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return new(serviceMonitor) },
}

type statefulSet struct{ appsv1.StatefulSet }

// check: what the API server would refuse, or what would never become ready.
func (s *statefulSet) check() error {
	sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
	if err != nil || s.Spec.Selector == nil {
		return fmt.Errorf("spec.selector: %v", err)
	}
	if !sel.Matches(labels.Set(s.Spec.Template.Labels)) {
		return errors.New("spec.selector does not match the pod template's labels")
	}
	if s.Spec.ServiceName == "" {
		return errors.New("spec.serviceName is empty")
	}
	if len(s.Spec.Template.Spec.Containers) == 0 {
		return errors.New("no containers")
	}
	for _, c := range s.Spec.Template.Spec.Containers {
		if c.Name == "" || c.Image == "" {
			return errors.New("a container without a name or an image")
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		for what, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				continue
			}
			if n := p.HTTPGet.Port.StrVal; n != "" && !ports[n] {
				return fmt.Errorf("container %s: %s names port %q, which it does not declare", c.Name, what, n)
			}
		}
		for _, v := range c.VolumeMounts {
			if !hasVolume(s.Spec.Template.Spec.Volumes, v.Name) {
				return fmt.Errorf("container %s mounts volume %q, which the pod does not have", c.Name, v.Name)
			}
		}
	}
	return nil
}

func hasVolume(vs []corev1.Volume, name string) bool {
	for _, v := range vs {
		if v.Name == name {
			return true
		}
	}
	return false
}

// crossCheck: references between the rendered objects.
func crossCheck(objs []object) []error {
	have := map[string]bool{}
	for _, o := range objs {
		have[o.kind+"/"+o.name] = true
	}
	var errs []error
	for _, o := range objs {
		switch t := o.typed.(type) {
		case *scaledObject:
			ref := t.Spec.ScaleTargetRef
			if !have[ref.Kind+"/"+ref.Name] {
				errs = append(errs, fmt.Errorf("%s: ScaledObject %s scales %s/%s, which was not rendered", o.source, o.name, ref.Kind, ref.Name))
			}
			for _, tr := range t.Spec.Triggers {
				if tr.AuthenticationRef != nil && !have["TriggerAuthentication/"+tr.AuthenticationRef.Name] {
					errs = append(errs, fmt.Errorf("%s: trigger authentication %s was not rendered", o.source, tr.AuthenticationRef.Name))
				}
			}
		case *statefulSet:
			if !have["Service/"+t.Spec.ServiceName] {
				errs = append(errs, fmt.Errorf("%s: StatefulSet %s names service %s, which was not rendered", o.source, o.name, t.Spec.ServiceName))
			}
		}
	}
	return errs
}
