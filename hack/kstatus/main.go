// Command kstatus prints the status that sigs.k8s.io/cli-utils' kstatus computes for Kubernetes
// objects: the library Flux's kustomize-controller (and kubectl-based tools) use to decide whether
// an applied object is Current, InProgress or Failed.
//
// Input on stdin: one JSON object, a JSON array of objects, or a List (items). Output: one JSON
// line per object, {"kind", "name", "status", "message"}, in input order. Exit status 1 when an
// object cannot be read or its status cannot be computed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// objects decodes stdin the way the API machinery does: whole numbers become int64, as kstatus
// expects of metadata.generation and status.observedGeneration.
func objects(data []byte) ([]map[string]interface{}, error) {
	var many []map[string]interface{}
	if err := utiljson.Unmarshal(data, &many); err == nil {
		return many, nil
	}
	var one map[string]interface{}
	if err := utiljson.Unmarshal(data, &one); err != nil {
		return nil, fmt.Errorf("stdin is neither a JSON object nor an array of objects: %w", err)
	}
	if items, ok := one["items"].([]interface{}); ok {
		for _, item := range items {
			object, ok := item.(map[string]interface{})
			if !ok {
				return nil, fmt.Errorf("a List item is not an object")
			}
			many = append(many, object)
		}
		return many, nil
	}
	return []map[string]interface{}{one}, nil
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(1)
	}
	list, err := objects(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	encoder := json.NewEncoder(out)
	for _, object := range list {
		u := &unstructured.Unstructured{Object: object}
		computed, err := status.Compute(u)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s %s: %v\n", u.GetKind(), u.GetName(), err)
			os.Exit(1)
		}
		if err := encoder.Encode(result{
			Kind:    u.GetKind(),
			Name:    u.GetName(),
			Status:  computed.Status.String(),
			Message: computed.Message,
		}); err != nil {
			fmt.Fprintln(os.Stderr, "kstatus: writing:", err)
			os.Exit(1)
		}
	}
}
