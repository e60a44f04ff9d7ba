package main

// The dashboards: one per probe family, the agent registry, probe health
// and the fleet overview. Panel queries follow the InfluxDB schema of
// DESIGN.md (measurement per probe type, tags probe_id/location/...).

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Dashboard is one generated dashboard and the file it is written to.
type Dashboard struct {
	File    string
	Builder *dashboard.DashboardBuilder
}

func f64(v float64) *float64 { return &v }

// thresholds builds absolute threshold steps: a base colour, then
// (value, colour) pairs.
func thresholds(base string, steps ...any) *dashboard.ThresholdsConfigBuilder {
	out := []dashboard.Threshold{{Value: nil, Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		out = append(out, dashboard.Threshold{Value: f64(steps[i].(float64)), Color: steps[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(out)
}

// Colour schemes of the thresholds above: green is good.
var (
	lossThresholds    = func() *dashboard.ThresholdsConfigBuilder { return thresholds("green", 1.0, "orange", 10.0, "red") }
	latencyThresholds = func() *dashboard.ThresholdsConfigBuilder { return thresholds("green", 100.0, "orange", 300.0, "red") }
	neutral           = func() *dashboard.ThresholdsConfigBuilder { return thresholds("green") }
)

func ts(title, unit, description, query string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).Description(description).Unit(unit).
		Datasource(datasourceRef()).
		WithTarget(Flux(query).RefId("A")).
		Thresholds(neutral()).
		Height(8).Span(12).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeTable).Placement(common.LegendPlacementBottom).ShowLegend(true).
			Calcs([]string{"mean", "max", "lastNotNull"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
}

func tbl(title, description, query string) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(datasourceRef()).
		WithTarget(Flux(query).RefId("A")).
		Thresholds(neutral()).
		Height(8).Span(24).
		Filterable(true).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"}))
}

func stt(title, unit, description, query string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).Description(description).Unit(unit).
		Datasource(datasourceRef()).
		WithTarget(Flux(query).RefId("A")).
		Height(4).Span(6).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false))
}

// override sets properties on the fields whose display name matches regexp.
func props(kv ...any) []dashboard.DynamicConfigValue {
	out := []dashboard.DynamicConfigValue{}
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, dashboard.DynamicConfigValue{Id: kv[i].(string), Value: kv[i+1]})
	}
	return out
}

// variable is a multi-select query variable with All, fed by Flux
// schema.tagValues and refreshed when the time range changes.
func variable(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasourceRef()).
		Query(dashboard.StringOrMap{String: &query}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		})
}

// base is what every dashboard shares: uid, title, tags, range, refresh,
// and the location and probe_id variables (probe_id narrowed by location)
// over `measurement`.
func base(uid, title, description, measurement string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"netprobe"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Time("now-6h", "now").
		Refresh("1m").
		Timezone("utc").
		Link(dashboard.NewDashboardLinkBuilder("netprobe").
			Type(dashboard.DashboardLinkTypeDashboards).Tags([]string{"netprobe"}).
			AsDropdown(true).IncludeVars(true).KeepTime(true).Icon("external link").Tooltip("").Url("").TargetBlank(false)).
		WithVariable(variable("location", "Location", tagValues(measurement, "location"))).
		WithVariable(variable("probe_id", "Agent", tagValues(measurement, "probe_id", byLocation)))
}

func dashboards() []Dashboard {
	return []Dashboard{
		{"overview.json", overviewDashboard()},
		{"icmp.json", icmpDashboard()},
		{"dns.json", dnsDashboard()},
		{"http.json", httpDashboard()},
		{"mtr.json", mtrDashboard()},
		{"bgp.json", bgpDashboard()},
		{"registry.json", registryDashboard()},
		{"health.json", healthDashboard()},
	}
}

func icmpDashboard() *dashboard.DashboardBuilder {
	sel := withAgent(byTarget)
	keep := `keep(columns: ["_time", "_value", "_field", "probe_id", "location", "target"])`
	return base("netprobe-icmp", "netprobe / ICMP", "Packet loss, round-trip times and jitter per agent and target (measurement icmp).", "icmp").
		WithVariable(variable("target", "Target", tagValues("icmp", "target", byLocation, byProbeID))).
		WithPanel(ts("Packet loss", "percent",
			"Mean loss per run over each interval, per agent and target. Above 10 % for 5 minutes pages (rule: ICMP loss above 10 %).",
			pipe(from("icmp", field("loss_pct"), sel...), meanPerWindow, keep)).
			Min(0).Max(100).Thresholds(lossThresholds()).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea))).
		WithPanel(ts("RTT min / median / max", "ms",
			"The band between the fastest and slowest reply of each run (dashed) around the median (solid).",
			pipe(from("icmp", fields("rtt_min_ms", "rtt_median_ms", "rtt_max_ms"), sel...), meanPerWindow, keep)).
			Min(0).
			OverrideByRegexp(".*rtt_(min|max)_ms.*", props("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{10, 10}}, "custom.fillOpacity", 0))).
		WithPanel(ts("Jitter", "ms",
			"Mean absolute difference of consecutive RTTs within a run.",
			pipe(from("icmp", field("jitter_ms"), sel...), meanPerWindow, keep)).
			Min(0).Thresholds(thresholds("green", 10.0, "orange", 30.0, "red"))).
		WithPanel(tbl("Latest run per agent and target",
			"The last run of each pair: loss, median RTT, jitter and the error class of a failed run.",
			pipe(from("icmp", fields("loss_pct", "rtt_median_ms", "jitter_ms", "sent", "received"), sel...),
				"last()",
				`pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
				"group()",
				`keep(columns: ["_time", "probe_id", "location", "target", "loss_pct", "rtt_median_ms", "jitter_ms", "sent", "received"])`,
				`sort(columns: ["loss_pct"], desc: true)`)).
			OverrideByName("loss_pct", props("unit", "percent", "custom.cellOptions", map[string]any{"type": "color-background"}, "thresholds", map[string]any{"mode": "absolute", "steps": []map[string]any{{"value": nil, "color": "green"}, {"value": 1, "color": "orange"}, {"value": 10, "color": "red"}}})).
			OverrideByRegexp("rtt_median_ms|jitter_ms", props("unit", "ms")))
}

func dnsDashboard() *dashboard.DashboardBuilder {
	sel := withAgent(byQuery)
	return base("netprobe-dns", "netprobe / DNS", "Resolver latency, response codes and answer changes (measurement dns).", "dns").
		WithVariable(variable("target", "Query name", tagValues("dns", "query_name", byLocation, byProbeID))).
		WithPanel(ts("Latency per resolver", "ms",
			"Mean query latency per agent, resolver and query name.",
			pipe(from("dns", field("latency_ms"), sel...), meanPerWindow,
				`keep(columns: ["_time", "_value", "probe_id", "resolver", "query_name", "record_type"])`)).
			Min(0).Thresholds(latencyThresholds())).
		WithPanel(ts("Response codes", "short",
			"Queries per interval by response code (NOERROR, NXDOMAIN, SERVFAIL, ...), over the selected agents and names.",
			pipe(from("dns", field("rcode"), sel...),
				`duplicate(column: "_value", as: "rcode")`,
				`group(columns: ["rcode"])`,
				`aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)`)).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))).
		WithPanel(tbl("Answer changes",
			"Per agent, resolver and name: how often the answer set changed in the range (a run whose answers differ from the run before) and the current answers.",
			pipe(from("dns", field("answers"), sel...),
				`reduce(identity: {first: true, prev: "", changes: 0, answers: ""}, fn: (r, accumulator) => ({first: false, prev: r._value, answers: r._value, changes: if not accumulator.first and r._value != accumulator.prev then accumulator.changes + 1 else accumulator.changes}))`,
				"group()",
				`keep(columns: ["probe_id", "location", "resolver", "query_name", "record_type", "changes", "answers"])`,
				`sort(columns: ["changes"], desc: true)`)).
			OverrideByName("changes", props("custom.cellOptions", map[string]any{"type": "color-background"}, "thresholds", map[string]any{"mode": "absolute", "steps": []map[string]any{{"value": nil, "color": "green"}, {"value": 1, "color": "orange"}}}))).
		WithPanel(tbl("Latest answer per agent, resolver and name",
			"The last query of each: rcode, latency, answers and the error class of a failed query.",
			pipe(from("dns", fields("rcode", "latency_ms", "answer_count", "answers", "error"), sel...),
				"last()",
				`pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
				"group()",
				`drop(columns: ["_start", "_stop", "_measurement"])`,
				`sort(columns: ["probe_id", "resolver", "query_name"])`)).
			OverrideByName("latency_ms", props("unit", "ms")))
}

func httpDashboard() *dashboard.DashboardBuilder {
	sel := withAgent(byURL)
	phases := []string{"dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms"}
	return base("netprobe-http", "netprobe / HTTP", "Request phases, status codes, success ratio and certificate expiry (measurement http).", "http").
		WithVariable(variable("target", "URL", tagValues("http", "url", byLocation, byProbeID))).
		WithPanel(ts("Phases (${target})", "ms",
			"Mean duration of each phase over the selected agents, stacked: DNS, TCP connect, TLS, time to first byte, and transfer (total minus the others). One panel per URL.",
			pipe(from("http", fields(phases...), sel...),
				`group(columns: ["_field"])`,
				meanPerWindow,
				`pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
				`map(fn: (r) => ({_time: r._time, dns_ms: if exists r.dns_ms then r.dns_ms else 0.0, connect_ms: if exists r.connect_ms then r.connect_ms else 0.0, tls_ms: if exists r.tls_ms then r.tls_ms else 0.0, ttfb_ms: if exists r.ttfb_ms then r.ttfb_ms else 0.0, total_ms: if exists r.total_ms then r.total_ms else 0.0}))`,
				`map(fn: (r) => ({_time: r._time, dns_ms: r.dns_ms, connect_ms: r.connect_ms, tls_ms: r.tls_ms, ttfb_ms: r.ttfb_ms, transfer_ms: if r.total_ms > r.dns_ms + r.connect_ms + r.tls_ms + r.ttfb_ms then r.total_ms - r.dns_ms - r.connect_ms - r.tls_ms - r.ttfb_ms else 0.0}))`)).
			Repeat("target").RepeatDirection(dashboard.PanelRepeatDirectionH).MaxPerRow(2).
			Min(0).FillOpacity(60).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))).
		WithPanel(ts("Status codes", "short",
			"Responses per interval by final HTTP status; a run without a response has no status and shows in the success ratio instead.",
			pipe(from("http", field("status_code"), sel...),
				`map(fn: (r) => ({r with status: string(v: r._value)}))`,
				`group(columns: ["status"])`,
				`aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)`)).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))).
		WithPanel(ts("Success ratio", "percent",
			"Share of runs whose status (and body matcher) met the expectation, per agent and URL. Below 95 % over 15 minutes pages (rule: HTTP success ratio below 95 %).",
			pipe(from("http", field("success"), sel...),
				"toFloat()",
				meanPerWindow,
				`map(fn: (r) => ({r with _value: r._value * 100.0}))`,
				`keep(columns: ["_time", "_value", "probe_id", "location", "url"])`)).
			Min(0).Max(100).Thresholds(thresholds("red", 95.0, "orange", 99.0, "green")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea))).
		WithPanel(tbl("Days to certificate expiry",
			"Days from the end of the range to the notAfter of the last certificate each agent saw per URL. Under 14 days pages (rule: certificate expires in less than 14 days).",
			pipe(from("http", field("cert_not_after"), sel...),
				"last()",
				`map(fn: (r) => ({probe_id: r.probe_id, location: r.location, url: r.url, not_after: time(v: r._value * 1000000000), days_left: (float(v: r._value) - float(v: uint(v: v.timeRangeStop)) / 1000000000.0) / 86400.0}))`,
				"group()",
				`sort(columns: ["days_left"])`)).
			OverrideByName("days_left", props("unit", "d", "decimals", 1, "custom.cellOptions", map[string]any{"type": "color-background"}, "thresholds", map[string]any{"mode": "absolute", "steps": []map[string]any{{"value": nil, "color": "red"}, {"value": 14, "color": "orange"}, {"value": 30, "color": "green"}}})))
}

func mtrDashboard() *dashboard.DashboardBuilder {
	sel := withAgent(byTarget)
	hopKeep := `keep(columns: ["_time", "_value", "probe_id", "target", "ttl"])`
	targetVar := variable("target", "Target", tagValues("mtr_path", "target", byLocation, byProbeID)).
		Multi(false).IncludeAll(false).
		Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("")}, Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("")}})
	pathChanges := pipe(from("mtr_path", field("path_hash"), sel...),
		// path_hash is hex: its first 12 digits as an integer, so
		// difference() finds the runs whose path differs from the run before.
		`map(fn: (r) => ({r with path_id: hex.int(v: if strings.strlen(v: r._value) > 12 then strings.substring(v: r._value, start: 0, end: 12) else r._value)}))`,
		`difference(columns: ["path_id"])`,
		`filter(fn: (r) => r.path_id != 0)`,
		`map(fn: (r) => ({_time: r._time, probe_id: r.probe_id, target: r.target, path_hash: r._value, text: "path changed to " + r._value + " (" + r.probe_id + " -> " + r.target + ")"}))`)
	return base("netprobe-mtr", "netprobe / MTR", "Per-hop loss and RTT towards one target, path changes as annotations (measurements mtr_path, mtr_hop).", "mtr_path").
		WithVariable(targetVar).
		Annotation(dashboard.NewAnnotationQueryBuilder().
			Name("Path changes").Enable(true).IconColor("orange").
			Datasource(datasourceRef()).
			Target(Flux("import \"contrib/bonitoo-io/hex\"\nimport \"strings\"\n\n" + pathChanges).RefId("Anno"))).
		WithPanel(ts("Per-hop loss", "percent",
			"Loss at each hop (ttl) per interval. Loss at an intermediate hop that does not continue to later hops is ICMP rate limiting, not loss.",
			pipe(from("mtr_hop", field("loss_pct"), sel...), meanPerWindow, hopKeep)).
			Min(0).Max(100).Thresholds(lossThresholds())).
		WithPanel(ts("Per-hop RTT", "ms",
			"Mean RTT at each hop (ttl) per interval.",
			pipe(from("mtr_hop", field("rtt_avg_ms"), sel...), meanPerWindow, hopKeep)).
			Min(0)).
		WithPanel(tbl("Hops of the latest run",
			"Each hop of the last run per agent: address, name, AS, loss and RTTs.",
			pipe(from("mtr_hop", fields("ip", "hostname", "asn", "loss_pct", "rtt_avg_ms", "rtt_best_ms", "rtt_worst_ms", "sent", "received"), sel...),
				"last()",
				`pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
				"group()",
				`map(fn: (r) => ({r with hop: int(v: r.ttl)}))`,
				`drop(columns: ["_start", "_stop", "_measurement", "ttl"])`,
				`sort(columns: ["probe_id", "hop"])`)).
			OverrideByName("loss_pct", props("unit", "percent")).
			OverrideByRegexp("rtt_.*", props("unit", "ms"))).
		WithPanel(ts("Hop count and destination reached", "short",
			"Hops per run; destination_reached is 1 when the last hop was the target.",
			pipe(from("mtr_path", fields("hop_count", "destination_reached"), sel...),
				"toFloat()",
				meanPerWindow,
				`keep(columns: ["_time", "_value", "_field", "probe_id", "target"])`)).
			Min(0))
}

func bgpDashboard() *dashboard.DashboardBuilder {
	sel := withAgent(byPrefix)
	return base("netprobe-bgp", "netprobe / BGP", "BGP events for the watched prefixes by type, and the events that may be a hijack (measurement bgp).", "bgp").
		WithVariable(variable("target", "Prefix", tagValues("bgp", "prefix", byLocation, byProbeID))).
		WithPanel(stt("Hijack-type events", "short",
			"origin_change, more_specific and rpki_invalid events in the range, over the selected prefixes.",
			pipe(from("bgp", field("source"), sel...),
				`filter(fn: (r) => contains(value: r.event, set: ["origin_change", "more_specific", "rpki_invalid"]))`,
				"group()",
				"count()")).
			Thresholds(thresholds("green", 1.0, "red")).NoValue("0")).
		WithPanel(stt("Events", "short",
			"All BGP events in the range, over the selected prefixes.",
			pipe(from("bgp", field("source"), sel...), "group()", "count()")).
			Thresholds(neutral())).
		WithPanel(ts("Events by type", "short",
			"Events per interval by type: announce, withdraw, origin_change, more_specific, flap, path_change.",
			pipe(from("bgp", field("source"), sel...),
				`group(columns: ["event"])`,
				`aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)`)).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).Span(24).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))).
		WithPanel(tbl("Possible hijacks: origin_change, more_specific, rpki_invalid",
			"Each such event with its origin AS, the expected origins, AS path, peer and collector. These page (rule: BGP hijack-type event).",
			pipe(from("bgp", fields("origin_asn", "expected_origins", "as_path", "peer_asn", "peer_ip", "collector", "source"), sel...),
				`filter(fn: (r) => contains(value: r.event, set: ["origin_change", "more_specific", "rpki_invalid"]))`,
				`pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
				"group()",
				`drop(columns: ["_start", "_stop", "_measurement"])`,
				`sort(columns: ["_time"], desc: true)`)))
}

func registryDashboard() *dashboard.DashboardBuilder {
	return base("netprobe-registry", "netprobe / Agent registry", "The agents that announced themselves: version, location, uptime and probe types (measurement agent_registry).", "agent_registry").
		WithPanel(stt("Agents registered", "short",
			"Distinct agents with a registry record in the range.",
			pipe(from("agent_registry", field("version"), agentFilters...),
				"last()",
				`group()`,
				`distinct(column: "probe_id")`,
				`count()`))).
		WithPanel(tbl("Agents",
			"The last registry record of each agent (and systemd instance, when agents run one per probe type).",
			pipe(from("agent_registry", fields("version", "hostname", "ip", "os", "available_metrics", "uptime_s", "started_at"), agentFilters...),
				"last()",
				`pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
				"group()",
				`drop(columns: ["_start", "_stop", "_measurement"])`,
				`sort(columns: ["probe_id"])`)).
			OverrideByName("uptime_s", props("unit", "s"))).
		WithPanel(tbl("Versions",
			"Agents per version: a rolling upgrade in progress shows two.",
			pipe(from("agent_registry", field("version"), agentFilters...),
				"last()",
				`duplicate(column: "_value", as: "version")`,
				`group(columns: ["version"])`,
				`distinct(column: "probe_id")`,
				`count()`,
				`rename(columns: {_value: "agents"})`,
				`group()`)).Span(12))
}

func healthDashboard() *dashboard.DashboardBuilder {
	age := heartbeatAge("7d", agentFilters...)
	return base("netprobe-health", "netprobe / Probe health", "Heartbeats of the agents: age of the last one, failures, spool depth and Kafka connectivity (measurement probe_health).", "probe_health").
		WithPanel(tbl("Heartbeat age",
			"Seconds since each agent's last probe_health heartbeat, over the last 7 days so an agent that stopped entirely still shows. Above 120 s pages (rule: missing heartbeat).",
			pipe(age, "group()", `sort(columns: ["_value"], desc: true)`)).
			OverrideByName("_value", props("displayName", "age", "unit", "s", "custom.cellOptions", map[string]any{"type": "color-background"}, "thresholds", map[string]any{"mode": "absolute", "steps": []map[string]any{{"value": nil, "color": "green"}, {"value": 60, "color": "orange"}, {"value": 120, "color": "red"}}}))).
		WithPanel(ts("Failed runs in the last hour", "short",
			"Per agent: probe runs that failed during the hour before each heartbeat.",
			pipe(from("probe_health", field("failures_last_hour"), agentFilters...),
				`aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)`,
				`keep(columns: ["_time", "_value", "probe_id", "location"])`)).
			Min(0).Thresholds(thresholds("green", 1.0, "orange", 10.0, "red"))).
		WithPanel(ts("Spool depth", "short",
			"Messages waiting in the agent's disk spool (Kafka unreachable) and messages the spool bound dropped.",
			pipe(from("probe_health", fields("spool_messages", "spool_dropped_messages"), agentFilters...),
				`aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)`,
				`keep(columns: ["_time", "_value", "_field", "probe_id"])`)).
			Min(0).Thresholds(thresholds("green", 1.0, "orange", 10000.0, "red"))).
		WithPanel(ts("Kafka connected", "short",
			"1 while the agent's producer is connected to Kafka, 0 while it spools.",
			pipe(from("probe_health", field("kafka_connected"), agentFilters...),
				"toInt()",
				`aggregateWindow(every: v.windowPeriod, fn: min, createEmpty: false)`,
				`keep(columns: ["_time", "_value", "probe_id"])`)).
			Min(0).Max(1).Thresholds(thresholds("red", 1.0, "green")).
			Mappings([]dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: map[string]dashboard.ValueMappingResult{
				"0": {Text: cog.ToPtr("disconnected"), Color: cog.ToPtr("red")},
				"1": {Text: cog.ToPtr("connected"), Color: cog.ToPtr("green")},
			}}}}))
}

func overviewDashboard() *dashboard.DashboardBuilder {
	sel := withAgent(byTarget)
	silent := pipe(heartbeatAge("7d", agentFilters...), `filter(fn: (r) => r._value > 120.0)`, "group()", `sort(columns: ["_value"], desc: true)`)
	return base("netprobe-overview", "netprobe / Overview", "The fleet at a glance: worst ICMP loss per agent and target, and agents whose heartbeats stopped.", "icmp").
		WithVariable(variable("target", "Target", tagValues("icmp", "target", byLocation, byProbeID))).
		WithPanel(stt("Agents heartbeating", "short",
			"Agents whose last heartbeat is at most 120 s old.",
			pipe(heartbeatAge("7d", agentFilters...), `filter(fn: (r) => r._value <= 120.0)`, "group()", "count()"))).
		WithPanel(stt("Agents silent", "short",
			"Agents whose last heartbeat is older than 120 s (within 7 days): see the table below and the Probe health dashboard.",
			pipe(heartbeatAge("7d", agentFilters...), `filter(fn: (r) => r._value > 120.0)`, "group()", "count()")).
			Thresholds(thresholds("green", 1.0, "red")).NoValue("0")).
		WithPanel(tbl("Worst loss: targets x agents",
			"The highest loss of any run in the range, one row per target and one column per agent.",
			pipe(from("icmp", field("loss_pct"), sel...),
				"max()",
				"group()",
				`pivot(rowKey: ["target"], columnKey: ["probe_id"], valueColumn: "_value")`,
				`sort(columns: ["target"])`)).
			Unit("percent").
			CellOptions(common.TableCellOptions{TableColoredBackgroundCellOptions: &common.TableColoredBackgroundCellOptions{Type: "color-background"}}).
			Thresholds(lossThresholds()).
			OverrideByName("target", props("custom.cellOptions", map[string]any{"type": "auto"}, "unit", "string"))).
		WithPanel(tbl("Silent agents",
			"Agents whose last heartbeat is older than 120 s, with when it was. They page (rule: missing heartbeat).",
			silent).
			OverrideByName("_value", props("displayName", "age", "unit", "s")))
}
