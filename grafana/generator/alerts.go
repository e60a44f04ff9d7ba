package main

// Grafana-managed alert rules, built with the SDK's alerting.Rule builders
// and written in Grafana's file-provisioning layout (apiVersion 1, groups
// with orgId/name/folder, rules without the org/folder/group fields, which
// the group carries). Each rule: A = a Flux query returning one table per
// alert instance (its group key becomes the instance's labels), B = the
// last value of each, C = a threshold on B, the condition.

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/alerting"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/expr"
)

// Where the rules live in Grafana.
const (
	RuleFolder   = "netprobe"
	RuleGroup    = "netprobe"
	RuleInterval = "1m"
	OrgID        = 1
	ContactPoint = "netprobe-oncall"
)

// Rule is one alert rule with the lookback of its Flux query.
type Rule struct {
	UID   string
	Title string
	// Flux query A; it sees v.timeRangeStart/Stop = now - LookbackS .. now.
	Query     string
	LookbackS int64
	// Threshold on the last value of each series of A: "gt" or "lt".
	Op        expr.ExprTypeThresholdConditionsEvaluatorType
	Threshold float64
	For       string
	NoData    alerting.RuleNoDataState
	ExecErr   alerting.RuleExecErrState
	Labels    map[string]string
	Summary   string
	// What to do, for the on-call person.
	Runbook string
	// The dashboard the alert points to.
	DashboardUID string
}

func exprRef() common.DataSourceRef {
	t, u := "__expr__", "__expr__"
	return common.DataSourceRef{Type: &t, Uid: &u}
}

// Builder builds the SDK rule.
func (r Rule) Builder() *alerting.RuleBuilder {
	intervalMs, maxPoints := 1000.0, int64(43200)
	q := Flux(r.Query).RefId("A")
	q.q.IntervalMs, q.q.MaxDataPoints = &intervalMs, &maxPoints
	annotations := map[string]string{
		"summary":          r.Summary,
		"description":      r.Runbook,
		"runbook_url":      "docs/grafana.md#" + r.UID,
		"__dashboardUid__": r.DashboardUID,
	}
	labels := map[string]string{"team": "netprobe"}
	for k, v := range r.Labels {
		labels[k] = v
	}
	return alerting.NewRuleBuilder(r.Title).
		Uid(r.UID).
		OrgID(OrgID).
		FolderUID(RuleFolder).
		RuleGroup(RuleGroup).
		Condition("C").
		For(r.For).
		NoDataState(r.NoData).
		ExecErrState(r.ExecErr).
		IsPaused(false).
		Labels(labels).
		Annotations(annotations).
		WithQuery(alerting.NewQueryBuilder("A").
			DatasourceUid(DatasourceUID).
			RelativeTimeRange(alerting.Duration(r.LookbackS), 0).
			Model(q)).
		WithQuery(alerting.NewQueryBuilder("B").
			DatasourceUid("__expr__").
			Model(expr.NewExprBuilder().TypeReduce(expr.NewTypeReduceBuilder().
				RefId("B").Datasource(exprRef()).Expression("A").
				Reducer(expr.TypeReduceReducerLast).
				Settings(expr.NewExprTypeReduceSettingsBuilder().Mode(expr.ExprTypeReduceSettingsModeDropNN))))).
		WithQuery(alerting.NewQueryBuilder("C").
			DatasourceUid("__expr__").
			Model(expr.NewExprBuilder().TypeThreshold(expr.NewTypeThresholdBuilder().
				RefId("C").Datasource(exprRef()).Expression("B").
				Conditions([]cog.Builder[expr.ExprTypeThresholdConditions]{
					expr.NewExprTypeThresholdConditionsBuilder().
						Evaluator(expr.NewExprTypeThresholdConditionsEvaluatorBuilder().Type(r.Op).Params([]float64{r.Threshold})),
				}))))
}

// alertFrom is a rule's query start: the default bucket over the rule's
// relative time range.
func alertFrom(measurement, fieldPred string) string {
	return fmt.Sprintf("from(bucket: v.defaultBucket)\n"+
		"  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"+
		"  |> filter(fn: (r) => r._measurement == %q and %s)\n", measurement, fieldPred)
}

// HeartbeatMaxAgeS is the age of the last heartbeat above which an agent
// is missing (agents send one every 30 s by default).
const HeartbeatMaxAgeS = 120.0

func rules() []Rule {
	return []Rule{
		{
			UID:   "netprobe-missing-heartbeat",
			Title: "netprobe: agent heartbeat missing",
			// 7 days of lookback, far longer than the 2-minute window: an
			// agent that stopped entirely keeps a last point, so its age keeps
			// growing and the alert keeps firing instead of resolving as
			// "no data" a minute after the agent died.
			Query:     heartbeatAge("7d"),
			LookbackS: 7 * 24 * 3600,
			Op:        expr.ExprTypeThresholdConditionsEvaluatorTypeGt, Threshold: HeartbeatMaxAgeS,
			For: "0s",
			// No probe_health point from any agent in 7 days: the whole
			// fleet, Kafka or ingest is down, or the datasource points at the
			// wrong bucket: page. A query error is the datasource failing,
			// which Grafana reports as its own DatasourceError alert.
			NoData: alerting.RuleNoDataStateAlerting, ExecErr: alerting.RuleExecErrStateError,
			Labels:       map[string]string{"severity": "page", "probe_type": "health"},
			Summary:      "Agent {{ $labels.probe_id }} ({{ $labels.location }}) has sent no heartbeat for {{ humanizeDuration $values.B.Value }}",
			Runbook:      "The agent's last probe_health point is older than 2 minutes. On the POP: `systemctl status 'netprobe-agent@*'` and `journalctl -u 'netprobe-agent@*' --since -1h`; if it runs, check the spool (kafka_connected, spool_messages on the Probe health dashboard) and the broker; if the VM is gone, see terraform/. A fleet-wide alert means ingest or Kafka: check netprobe-ingest and its consumer lag.",
			DashboardUID: "netprobe-health",
		},
		{
			UID:   "netprobe-icmp-loss",
			Title: "netprobe: ICMP loss above 10 %",
			Query: pipe(alertFrom("icmp", field("loss_pct")),
				`group(columns: ["probe_id", "location", "target"])`,
				"mean()"),
			LookbackS: 300,
			Op:        expr.ExprTypeThresholdConditionsEvaluatorTypeGt, Threshold: 10,
			For: "0s",
			// No ICMP result for a pair in 5 minutes is the heartbeat rule's
			// business, not this one's: OK. A query error is reported by
			// Grafana's DatasourceError alert.
			NoData: alerting.RuleNoDataStateOK, ExecErr: alerting.RuleExecErrStateError,
			Labels:       map[string]string{"severity": "ticket", "probe_type": "icmp"},
			Summary:      "{{ $labels.probe_id }} ({{ $labels.location }}) loses {{ humanize $values.B.Value }} % of pings to {{ $labels.target }} (mean over 5 min)",
			Runbook:      "Compare with other locations on the ICMP and Overview dashboards: loss from one POP only is that POP's uplink (open the MTR dashboard for the path and the hop where loss starts); loss from several is the target (see the multi-vantage alert).",
			DashboardUID: "netprobe-icmp",
		},
		{
			UID:   "netprobe-target-down-multi-vantage",
			Title: "netprobe: target down from several locations",
			// A location sees a target down when the mean loss of its runs in
			// 5 minutes is at least 90 %; the value is the number of such
			// locations per target.
			Query: pipe(alertFrom("icmp", field("loss_pct")),
				`group(columns: ["target", "location"])`,
				"mean()",
				`filter(fn: (r) => r._value >= 90.0)`,
				`group(columns: ["target"])`,
				`count()`,
				`map(fn: (r) => ({target: r.target, _value: float(v: r._value)}))`),
			LookbackS: 300,
			Op:        expr.ExprTypeThresholdConditionsEvaluatorTypeGt, Threshold: 1,
			For: "1m",
			// No target down anywhere returns no rows: OK.
			NoData: alerting.RuleNoDataStateOK, ExecErr: alerting.RuleExecErrStateError,
			Labels:       map[string]string{"severity": "page", "probe_type": "icmp"},
			Summary:      "{{ $labels.target }} is down from {{ $values.B.Value }} locations",
			Runbook:      "The target fails from at least two locations, so it is the target or its network, not one POP. Check the target's status page/owner, the HTTP and MTR dashboards for where the path ends, and BGP events for its prefix.",
			DashboardUID: "netprobe-overview",
		},
		{
			UID:   "netprobe-http-success-ratio",
			Title: "netprobe: HTTP success ratio below 95 %",
			Query: pipe(alertFrom("http", field("success")),
				"toFloat()",
				`group(columns: ["probe_id", "location", "url"])`,
				"mean()",
				`map(fn: (r) => ({r with _value: r._value * 100.0}))`),
			LookbackS: 900,
			Op:        expr.ExprTypeThresholdConditionsEvaluatorTypeLt, Threshold: 95,
			For:    "0s",
			NoData: alerting.RuleNoDataStateOK, ExecErr: alerting.RuleExecErrStateError,
			Labels:       map[string]string{"severity": "page", "probe_type": "http"},
			Summary:      "{{ $labels.url }} succeeds in only {{ humanize $values.B.Value }} % of requests from {{ $labels.probe_id }} ({{ $labels.location }}) over 15 min",
			Runbook:      "Open the HTTP dashboard for the URL: status codes say whether the server answers wrongly (5xx, unexpected 3xx/4xx) or not at all (no status; see the error column and the phases: dns, connect or tls failing). From one location only: that POP's network or DNS.",
			DashboardUID: "netprobe-http",
		},
		{
			UID:   "netprobe-cert-expiry",
			Title: "netprobe: TLS certificate expires in less than 14 days",
			Query: pipe(alertFrom("http", field("cert_not_after")),
				"last()",
				`map(fn: (r) => ({r with _value: (float(v: r._value) - float(v: uint(v: v.timeRangeStop)) / 1000000000.0) / 86400.0}))`,
				`keep(columns: ["_time", "_value", "probe_id", "location", "url"])`),
			LookbackS: 3600,
			Op:        expr.ExprTypeThresholdConditionsEvaluatorTypeLt, Threshold: 14,
			For:    "0s",
			NoData: alerting.RuleNoDataStateOK, ExecErr: alerting.RuleExecErrStateError,
			Labels:       map[string]string{"severity": "ticket", "probe_type": "http"},
			Summary:      "The certificate of {{ $labels.url }} seen from {{ $labels.probe_id }} expires in {{ humanize $values.B.Value }} days",
			Runbook:      "Renew the certificate (or fix the ACME renewal) and deploy it to every endpoint; if only some locations see the old one, a CDN edge or load balancer member still serves it.",
			DashboardUID: "netprobe-http",
		},
		{
			UID:   "netprobe-bgp-hijack-event",
			Title: "netprobe: BGP origin change, more specific or RPKI invalid",
			Query: pipe(alertFrom("bgp", field("source")),
				`filter(fn: (r) => contains(value: r.event, set: ["origin_change", "more_specific", "rpki_invalid"]))`,
				`group(columns: ["prefix", "event"])`,
				"count()",
				`map(fn: (r) => ({prefix: r.prefix, event: r.event, _value: float(v: r._value)}))`),
			LookbackS: 900,
			Op:        expr.ExprTypeThresholdConditionsEvaluatorTypeGt, Threshold: 0,
			For:    "0s",
			NoData: alerting.RuleNoDataStateOK, ExecErr: alerting.RuleExecErrStateError,
			Labels:       map[string]string{"severity": "page", "probe_type": "bgp"},
			Summary:      "{{ $labels.event }} for {{ $labels.prefix }} ({{ $values.B.Value }} in 15 min)",
			Runbook:      "Open the BGP dashboard's hijack table: an origin AS not in expected_origins, or a more specific prefix, may be a hijack or a route leak, or a planned change nobody told netprobe about. Confirm with the prefix owner; if unplanned, contact the origin AS and upstreams, and announce the more specifics yourself if needed.",
			DashboardUID: "netprobe-bgp",
		},
	}
}

// ruleGroup builds the SDK rule group.
func ruleGroup() *alerting.RuleGroupBuilder {
	g := alerting.NewRuleGroupBuilder(RuleGroup).FolderUid(RuleFolder).Interval(60)
	for _, r := range rules() {
		g = g.WithRule(r.Builder())
	}
	return g
}

// contactPoint is an example webhook receiver; its URL comes from the
// environment at provisioning time.
func contactPoint() *alerting.ContactPointBuilder {
	return alerting.NewContactPointBuilder().
		Uid("netprobe-oncall-webhook").
		Name(ContactPoint).
		Type(alerting.ContactPointTypeWebhook).
		Settings(map[string]any{"url": "$NETPROBE_ALERT_WEBHOOK_URL", "httpMethod": "POST"}).
		DisableResolveMessage(false)
}

// policy routes netprobe's pages quickly and its tickets daily.
func policy() *alerting.NotificationPolicyBuilder {
	route := func(severity, wait, repeat string) cog.Builder[alerting.NotificationPolicy] {
		return alerting.NewNotificationPolicyBuilder().
			Receiver(ContactPoint).
			ObjectMatchers(alerting.ObjectMatchers{{"team", "=", "netprobe"}, {"severity", "=", severity}}).
			GroupWait(wait).RepeatInterval(repeat)
	}
	return alerting.NewNotificationPolicyBuilder().
		Receiver(ContactPoint).
		GroupBy([]string{"grafana_folder", "alertname"}).
		GroupWait("30s").GroupInterval("5m").RepeatInterval("4h").
		Routes([]cog.Builder[alerting.NotificationPolicy]{
			route("page", "30s", "4h"),
			route("ticket", "5m", "24h"),
		})
}
