// helm-render renders a Helm chart the way `helm template` does, for the tests of a machine without
// helm: Go's text/template with sprig's functions (the libraries Helm itself uses), Helm's own
// functions (toYaml, fromYaml, toJson, fromJson, include, tpl, required, fail, lookup), Helm's
// values coalescing (the chart's values.yaml, then each -f file, then each --set: maps merge,
// null deletes), subcharts from Chart.yaml dependencies with file:// repositories (their values
// under the dependency's name, their templates in the same template set), .Release, .Chart,
// .Capabilities (--kube-version), .Template, and `missingkey=zero` with "<no value>" removed, as
// Helm renders.
//
// What it leaves out: values.schema.json validation (the tests validate with ajv), .Files, hooks,
// the chart's kubeVersion check, and Helm's ordering of the output by kind (files are printed in
// name order, each after a "# Source:" line, as `helm template` prints them).
//
//	helm-render [--namespace NS] [--kube-version v1.31.0] [--api-versions G/V]... [--notes] [-f values.yaml]... [--set a.b=c]... RELEASE CHART_DIR
//
// Exit codes: 0 rendered; 1 a template failed (the message, as Helm prints it, on stderr); 2 usage.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type values = map[string]interface{}

type chart struct {
	dir      string
	name     string
	path     string // template path prefix: "parent/charts/sub"
	meta     values
	defaults values
	subs     []*chart
}

type listFlag []string

func main() {
	namespace := "default"
	kubeVersion := "v1.31.0"
	notes := false
	var files, sets, extraAPIs listFlag
	var positional []string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		arg := args[i]
		next := func() string {
			if i+1 >= len(args) {
				usage("missing value after " + arg)
			}
			i++
			return args[i]
		}
		switch {
		case arg == "--namespace" || arg == "-n":
			namespace = next()
		case arg == "--kube-version":
			kubeVersion = next()
		case arg == "--notes":
			notes = true
		case arg == "-f" || arg == "--values":
			files = append(files, next())
		case arg == "--set":
			sets = append(sets, next())
		case arg == "--api-versions" || arg == "-a":
			extraAPIs = append(extraAPIs, next())
		case strings.HasPrefix(arg, "-"):
			usage("unknown flag " + arg)
		default:
			positional = append(positional, arg)
		}
	}
	if len(positional) != 2 {
		usage("expected RELEASE and CHART_DIR")
	}
	if !strings.HasPrefix(kubeVersion, "v") {
		kubeVersion = "v" + kubeVersion
	}
	out, err := render(positional[0], positional[1], namespace, kubeVersion, files, sets, apiVersions(extraAPIs), notes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

func usage(problem string) {
	fmt.Fprintln(os.Stderr, "helm-render:", problem)
	fmt.Fprintln(os.Stderr, "usage: helm-render [--namespace NS] [--kube-version v1.31.0] [--notes] [-f values.yaml]... [--set a.b=c]... RELEASE CHART_DIR")
	os.Exit(2)
}

func readYAMLFile(path string) (values, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := values{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func loadChart(dir, parentPath string) (*chart, error) {
	meta, err := readYAMLFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	name, _ := meta["name"].(string)
	defaults := values{}
	if _, err := os.Stat(filepath.Join(dir, "values.yaml")); err == nil {
		if defaults, err = readYAMLFile(filepath.Join(dir, "values.yaml")); err != nil {
			return nil, err
		}
	}
	path := name
	if parentPath != "" {
		path = parentPath + "/charts/" + name
	}
	c := &chart{dir: dir, name: name, path: path, meta: meta, defaults: defaults}
	deps, _ := meta["dependencies"].([]interface{})
	for _, d := range deps {
		dep, _ := d.(map[string]interface{})
		repo, _ := dep["repository"].(string)
		if !strings.HasPrefix(repo, "file://") {
			return nil, fmt.Errorf("%s: dependency %v: only file:// repositories are supported", name, dep["name"])
		}
		sub, err := loadChart(filepath.Join(dir, strings.TrimPrefix(repo, "file://")), path)
		if err != nil {
			return nil, err
		}
		c.subs = append(c.subs, sub)
	}
	return c, nil
}

// coalesce merges over into base as Helm does for user values: maps merge recursively, a null
// deletes the key, anything else replaces.
func coalesce(base, over values) values {
	out := values{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		if vm, ok := v.(map[string]interface{}); ok {
			if bm, ok := out[k].(map[string]interface{}); ok {
				out[k] = coalesce(bm, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// setValue applies one --set a.b.c=value (no lists or escapes), typed as Helm's strvals types it.
func setValue(target values, assignment string) error {
	eq := strings.Index(assignment, "=")
	if eq < 1 {
		return fmt.Errorf("--set %q: expected key=value", assignment)
	}
	keys := strings.Split(assignment[:eq], ".")
	raw := assignment[eq+1:]
	var value interface{} = raw
	switch {
	case raw == "null":
		value = nil
	case raw == "true" || raw == "false":
		value = raw == "true"
	default:
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil && (raw == "0" || !strings.HasPrefix(raw, "0")) {
			value = n
		}
	}
	node := target
	for _, k := range keys[:len(keys)-1] {
		child, ok := node[k].(map[string]interface{})
		if !ok {
			child = values{}
			node[k] = child
		}
		node = child
	}
	node[keys[len(keys)-1]] = value
	return nil
}

// values of a chart and its subcharts: the parent's key for each subchart, coalesced over the
// subchart's own defaults, is both the subchart's .Values and the parent's .Values.<name>.
func resolveValues(c *chart, user values) values {
	merged := coalesce(c.defaults, user)
	for _, sub := range c.subs {
		own, _ := merged[sub.name].(map[string]interface{})
		if own == nil {
			own = values{}
		}
		subValues := resolveValues(sub, own)
		if global, ok := merged["global"]; ok {
			subValues["global"] = global
		}
		merged[sub.name] = subValues
	}
	return merged
}

func chartObject(meta values) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range meta {
		out[strings.ToUpper(k[:1])+k[1:]] = v
	}
	return out
}

type templateFile struct {
	name string // "chart/templates/x.yaml"
	text string
	c    *chart
}

func collectTemplates(c *chart, into *[]templateFile) error {
	dir := filepath.Join(c.dir, "templates")
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		*into = append(*into, templateFile{name: c.path + "/templates/" + e.Name(), text: string(data), c: c})
	}
	for _, sub := range c.subs {
		if err := collectTemplates(sub, into); err != nil {
			return err
		}
	}
	return nil
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func render(release, dir, namespace, kubeVersion string, files, sets listFlag, apis apiVersions, notes bool) (string, error) {
	top, err := loadChart(dir, "")
	if err != nil {
		return "", err
	}
	user := values{}
	for _, f := range files {
		v, err := readYAMLFile(f)
		if err != nil {
			return "", err
		}
		user = coalesce(user, v)
	}
	for _, s := range sets {
		if err := setValue(user, s); err != nil {
			return "", err
		}
	}
	allValues := resolveValues(top, user)

	var templates []templateFile
	if err := collectTemplates(top, &templates); err != nil {
		return "", err
	}
	sort.Slice(templates, func(i, j int) bool { return templates[i].name < templates[j].name })

	major, minor := "1", "31"
	if parts := strings.SplitN(strings.TrimPrefix(kubeVersion, "v"), ".", 3); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	capabilities := map[string]interface{}{
		"KubeVersion": map[string]interface{}{"Version": kubeVersion, "GitVersion": kubeVersion, "Major": major, "Minor": minor},
		"APIVersions": apis,
		"HelmVersion": map[string]interface{}{"Version": "v3.19.0"},
	}
	releaseObject := map[string]interface{}{"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1}

	scope := func(c *chart, name string) map[string]interface{} {
		v := allValues
		if c != top {
			// The subchart's values, found under its path below the top chart.
			for _, part := range strings.Split(strings.TrimPrefix(c.path, top.path+"/charts/"), "/charts/") {
				v, _ = v[part].(map[string]interface{})
			}
		}
		return map[string]interface{}{
			"Values":       v,
			"Release":      releaseObject,
			"Chart":        chartObject(c.meta),
			"Capabilities": capabilities,
			"Template":     map[string]interface{}{"Name": name, "BasePath": c.path + "/templates"},
			"Files":        map[string]interface{}{},
		}
	}

	root := template.New("gotpl").Option("missingkey=zero")
	includeDepth := map[string]int{}
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		out := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &out); err != nil {
			out["Error"] = err.Error()
		}
		return out
	}
	funcs["fromYamlArray"] = func(s string) []interface{} {
		var out []interface{}
		if err := yaml.Unmarshal([]byte(s), &out); err != nil {
			return []interface{}{err.Error()}
		}
		return out
	}
	funcs["toJson"] = func(v interface{}) string {
		data, _ := json.Marshal(v)
		return string(data)
	}
	funcs["fromJson"] = func(s string) map[string]interface{} {
		out := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			out["Error"] = err.Error()
		}
		return out
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	funcs["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		includeDepth[name]++
		defer func() { includeDepth[name]-- }()
		if includeDepth[name] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		if _, err := t.New("tpl").Parse(text); err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "tpl", data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	root.Funcs(funcs)
	for _, t := range templates {
		if _, err := root.New(t.name).Parse(t.text); err != nil {
			return "", err
		}
	}

	var out strings.Builder
	for _, t := range templates {
		base := filepath.Base(t.name)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notes || (isNotes && t.c != top) {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, t.name, scope(t.c, t.name)); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if isNotes {
			out.WriteString(text)
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", t.name, strings.TrimRight(text, "\n"))
	}
	return out.String(), nil
}

// apiVersions answers .Capabilities.APIVersions.Has: the built-in groups the chart uses, and those
// named with --api-versions (as `helm template --api-versions monitoring.coreos.com/v1`).
type apiVersions []string

var builtinAPIVersions = []string{"v1", "apps/v1", "policy/v1", "autoscaling/v2"}

func (extra apiVersions) Has(version string) bool {
	parts := strings.Split(version, "/")
	groupVersion := parts[0]
	if parts[0] != "v1" && len(parts) >= 2 {
		groupVersion = parts[0] + "/" + parts[1]
	}
	for _, known := range append(append([]string{}, builtinAPIVersions...), extra...) {
		if known == groupVersion || known == version {
			return true
		}
	}
	return false
}
