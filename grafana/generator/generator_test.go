package main

// Static checks of the committed files: they are what the generator
// writes, every dashboard passes the foundation SDK's strict decoding and
// validation, panel ids are unique, every datasource reference resolves to
// the provisioned datasource, and every provisioned rule, contact point and
// policy decodes strictly into the SDK's alerting types and validates.
// The queries themselves are executed against InfluxDB by
// ingest/tests/grafana_queries.rs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/alerting"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"sigs.k8s.io/yaml"
)

// grafanaDir is grafana/, where the committed files are.
const grafanaDir = ".."

// sdkErr reports whether err from a generated SDK method is a real error:
// those methods return an empty cog.BuildErrors as a non-nil error.
func sdkErr(err error) bool {
	if err == nil {
		return false
	}
	var be cog.BuildErrors
	if errors.As(err, &be) {
		return len(be) > 0
	}
	return true
}

func committedFiles(t *testing.T, dirs ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(grafanaDir, d), func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(grafanaDir, p)
			out[rel] = b
			return nil
		})
		if err != nil {
			t.Fatalf("reading %s: %v", d, err)
		}
	}
	return out
}

func TestCommittedFilesAreWhatTheGeneratorWrites(t *testing.T) {
	want, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	got := committedFiles(t, "dashboards", "provisioning", "prometheus")
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("grafana/%s is not committed: run `go run .` in grafana/generator", name)
			continue
		}
		if !bytes.Equal(g, w) {
			t.Errorf("grafana/%s differs from the generator's output: run `go run .` in grafana/generator", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("grafana/%s is not written by the generator: remove it or generate it", name)
		}
	}
}

func dashboardFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := committedFiles(t, "dashboards")
	if len(files) != 8 {
		t.Fatalf("want 8 dashboards (overview, icmp, dns, http, mtr, bgp, registry, health), got %d", len(files))
	}
	return files
}

func TestDashboardsPassStrictUnmarshalAndValidate(t *testing.T) {
	for name, raw := range dashboardFiles(t) {
		d := dashboard.Dashboard{}
		if err := d.UnmarshalJSONStrict(raw); sdkErr(err) {
			t.Errorf("%s: strict unmarshal: %v", name, err)
			continue
		}
		if err := d.Validate(); sdkErr(err) {
			t.Errorf("%s: validate: %v", name, err)
		}
		if d.Uid == nil || !strings.HasPrefix(*d.Uid, "netprobe-") {
			t.Errorf("%s: uid %v does not start with netprobe-", name, d.Uid)
		}
		if len(d.Panels) < 3 {
			t.Errorf("%s: only %d panels", name, len(d.Panels))
		}
	}
}

// The strict decoding is not vacuous: an unknown key in a Flux target, a
// panel or a dashboard is rejected, and so is a target without a query.
func TestStrictUnmarshalRejectsUnknownKeys(t *testing.T) {
	raw := dashboardFiles(t)["dashboards/icmp.json"]
	cases := map[string]func(m map[string]any){
		"unknown dashboard key": func(m map[string]any) { m["refreshh"] = "1m" },
		"unknown panel key": func(m map[string]any) {
			m["panels"].([]any)[0].(map[string]any)["titel"] = "x"
		},
		"unknown target key": func(m map[string]any) {
			p := m["panels"].([]any)[0].(map[string]any)
			p["targets"].([]any)[0].(map[string]any)["querry"] = "x"
		},
		"target without query": func(m map[string]any) {
			p := m["panels"].([]any)[0].(map[string]any)
			delete(p["targets"].([]any)[0].(map[string]any), "query")
		},
		"wrong type": func(m map[string]any) { m["refresh"] = 60 },
	}
	for what, mutate := range cases {
		m := map[string]any{}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		mutate(m)
		b, _ := json.Marshal(m)
		d := dashboard.Dashboard{}
		if err := d.UnmarshalJSONStrict(b); !sdkErr(err) {
			t.Errorf("%s: accepted", what)
		}
	}
}

// walk calls fn on every object in v, depth first.
func walk(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, c := range x {
			walk(c, fn)
		}
	case []any:
		for _, c := range x {
			walk(c, fn)
		}
	}
}

func TestPanelIdsUniqueAndDatasourcesResolve(t *testing.T) {
	uids := provisionedDatasourceUIDs(t)
	for name, raw := range dashboardFiles(t) {
		var d map[string]any
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		ids := map[float64]bool{}
		for _, p := range d["panels"].([]any) {
			id, ok := p.(map[string]any)["id"].(float64)
			if !ok {
				t.Errorf("%s: panel %q has no id", name, p.(map[string]any)["title"])
				continue
			}
			if ids[id] {
				t.Errorf("%s: panel id %v used twice", name, id)
			}
			ids[id] = true
		}
		refs := 0
		walk(d, func(m map[string]any) {
			ds, ok := m["datasource"].(map[string]any)
			if !ok {
				return
			}
			refs++
			if uid, _ := ds["uid"].(string); !uids[uid] {
				t.Errorf("%s: datasource uid %q is not provisioned (have %v)", name, uid, uids)
			}
			if typ, _ := ds["type"].(string); typ != DatasourceType {
				t.Errorf("%s: datasource type %q, want %q", name, typ, DatasourceType)
			}
		})
		if refs == 0 {
			t.Errorf("%s: no datasource references", name)
		}
	}
}

func readYAML(t *testing.T, rel string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(grafanaDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func provisionedDatasourceUIDs(t *testing.T) map[string]bool {
	var f struct {
		APIVersion  int              `json:"apiVersion"`
		Datasources []map[string]any `json:"datasources"`
	}
	readYAML(t, "provisioning/datasources/netprobe.yaml", &f)
	out := map[string]bool{}
	for _, ds := range f.Datasources {
		if ds["type"] != DatasourceType {
			t.Errorf("datasource %v: type %v", ds["name"], ds["type"])
		}
		jd, _ := ds["jsonData"].(map[string]any)
		if jd["version"] != "Flux" || jd["defaultBucket"] == nil || jd["organization"] == nil {
			t.Errorf("datasource %v: jsonData %v lacks Flux/defaultBucket/organization", ds["name"], jd)
		}
		out[ds["uid"].(string)] = true
	}
	if !out[DatasourceUID] {
		t.Fatalf("datasource %s is not provisioned", DatasourceUID)
	}
	return out
}

// strictJSON re-encodes v as JSON and decodes it strictly into an SDK type.
func strictJSON(t *testing.T, what string, v any, into interface{ UnmarshalJSONStrict([]byte) error }) bool {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := into.UnmarshalJSONStrict(b); sdkErr(err) {
		t.Errorf("%s: strict unmarshal: %v", what, err)
		return false
	}
	return true
}

type rulesFile struct {
	APIVersion int `json:"apiVersion"`
	Groups     []struct {
		OrgID    int64            `json:"orgId"`
		Name     string           `json:"name"`
		Folder   string           `json:"folder"`
		Interval string           `json:"interval"`
		Rules    []map[string]any `json:"rules"`
	} `json:"groups"`
}

func TestAlertRulesPassSdkValidation(t *testing.T) {
	uids := provisionedDatasourceUIDs(t)
	var f rulesFile
	readYAML(t, "provisioning/alerting/netprobe-rules.yaml", &f)
	if f.APIVersion != 1 || len(f.Groups) != 1 {
		t.Fatalf("want apiVersion 1 and one group, got %d and %d", f.APIVersion, len(f.Groups))
	}
	g := f.Groups[0]
	seen := map[string]bool{}
	for _, r := range g.Rules {
		// The provisioning layout names the group's fields differently:
		// map them onto each rule the way Grafana does when it loads it.
		m := map[string]any{}
		for k, v := range r {
			m[k] = v
		}
		m["orgID"], m["folderUID"], m["ruleGroup"] = g.OrgID, g.Folder, g.Name
		rule := alerting.Rule{}
		what := "rule " + r["uid"].(string)
		if !strictJSON(t, what, m, &rule) {
			continue
		}
		if err := rule.Validate(); sdkErr(err) {
			t.Errorf("%s: validate: %v", what, err)
		}
		if seen[*rule.Uid] {
			t.Errorf("%s: uid used twice", what)
		}
		seen[*rule.Uid] = true
		refs := map[string]bool{}
		for _, q := range rule.Data {
			refs[*q.RefId] = true
			ds := *q.DatasourceUid
			if ds != "__expr__" && !uids[ds] {
				t.Errorf("%s: query %s: datasource %q is not provisioned", what, *q.RefId, ds)
			}
			if ds == DatasourceUID && (q.RelativeTimeRange == nil || q.RelativeTimeRange.From == nil || *q.RelativeTimeRange.From <= 0) {
				t.Errorf("%s: query %s has no relative time range", what, *q.RefId)
			}
		}
		if !refs[rule.Condition] {
			t.Errorf("%s: condition %q is not a query of the rule", what, rule.Condition)
		}
		for _, k := range []string{"summary", "description"} {
			if rule.Annotations[k] == "" {
				t.Errorf("%s: no %s annotation", what, k)
			}
		}
		if rule.Labels["severity"] == "" {
			t.Errorf("%s: no severity label", what)
		}
		if rule.NoDataState == "" || rule.ExecErrState == "" {
			t.Errorf("%s: NoData/Error states not set", what)
		}
	}
	var want []string
	for _, r := range rules() {
		want = append(want, r.UID)
	}
	var got []string
	for u := range seen {
		got = append(got, u)
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(want, ",") != strings.Join(got, ",") {
		t.Errorf("rules %v, want %v", got, want)
	}
}

func TestContactPointsAndPoliciesPassSdkValidation(t *testing.T) {
	var f struct {
		APIVersion    int `json:"apiVersion"`
		ContactPoints []struct {
			OrgID     int64            `json:"orgId"`
			Name      string           `json:"name"`
			Receivers []map[string]any `json:"receivers"`
		} `json:"contactPoints"`
		Policies []map[string]any `json:"policies"`
	}
	readYAML(t, "provisioning/alerting/netprobe-notifications.yaml", &f)
	names := map[string]bool{}
	for _, cp := range f.ContactPoints {
		names[cp.Name] = true
		for _, r := range cp.Receivers {
			m := map[string]any{"name": cp.Name}
			for k, v := range r {
				m[k] = v
			}
			c := alerting.ContactPoint{}
			if strictJSON(t, "contact point "+cp.Name, m, &c) {
				if err := c.Validate(); sdkErr(err) {
					t.Errorf("contact point %s: %v", cp.Name, err)
				}
			}
		}
	}
	if len(f.Policies) != 1 {
		t.Fatalf("want one policy tree, got %d", len(f.Policies))
	}
	for _, p := range f.Policies {
		m := map[string]any{}
		for k, v := range p {
			if k != "orgId" {
				m[k] = v
			}
		}
		pol := alerting.NotificationPolicy{}
		if !strictJSON(t, "policy", m, &pol) {
			continue
		}
		if err := pol.Validate(); sdkErr(err) {
			t.Errorf("policy: %v", err)
		}
		var check func(alerting.NotificationPolicy)
		check = func(p alerting.NotificationPolicy) {
			if p.Receiver != nil && !names[*p.Receiver] {
				t.Errorf("policy routes to unknown contact point %q", *p.Receiver)
			}
			for _, r := range p.Routes {
				check(r)
			}
		}
		check(pol)
	}
}

func TestPrometheusRuleCoversTheDlq(t *testing.T) {
	var f struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	readYAML(t, "prometheus/netprobe-ingest.rules.yml", &f)
	found := false
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if strings.Contains(r.Expr, "netprobe_ingest_dlq_messages_total") && strings.Contains(r.Expr, "increase(") {
				found = true
			}
			if r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("%s: no summary or severity", r.Alert)
			}
		}
	}
	if !found {
		t.Error("no rule on netprobe_ingest_dlq_messages_total")
	}
}
