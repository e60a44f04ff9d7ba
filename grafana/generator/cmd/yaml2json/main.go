// Command yaml2json prints a YAML file (e.g. a provisioning file) as JSON,
// so tests in other languages read the committed files without a YAML
// library of their own: `go run ./cmd/yaml2json FILE`.
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: yaml2json FILE")
		os.Exit(2)
	}
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "yaml2json:", err)
		os.Exit(1)
	}
	js, err := yaml.YAMLToJSON(b)
	if err != nil {
		fmt.Fprintf(os.Stderr, "yaml2json: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	os.Stdout.Write(append(js, '\n'))
}
