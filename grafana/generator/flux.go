package main

// Flux building blocks shared by panels, variables and alert rules. Every
// query reads the datasource's default bucket (`v.defaultBucket`) and, on a
// dashboard, the dashboard's time range (`v.timeRangeStart`,
// `v.timeRangeStop`) and interval (`v.windowPeriod`): the macros Grafana's
// InfluxDB datasource replaces before it sends the query.

import (
	"fmt"
	"strings"
)

// Filter is one Flux predicate on a row `r`.
type Filter string

// Template-variable filters. Multi-select variables are substituted with
// the `json` format (a JSON array of the selected values, all values for
// All) for `contains`, or the `regex` format (`(a|b)`, values escaped) for
// a regex match; see docs/grafana.md.
const (
	byProbeID  Filter = `contains(value: r.probe_id, set: ${probe_id:json})`
	byLocation Filter = `contains(value: r.location, set: ${location:json})`
	byTarget   Filter = `r.target =~ /^${target:regex}$/`
	byURL      Filter = `r.url =~ /^${target:regex}$/`
	byQuery    Filter = `contains(value: r.query_name, set: ${target:json})`
	byPrefix   Filter = `contains(value: r.prefix, set: ${target:json})`
)

// agentFilters are the probe_id and location filters every dashboard has.
var agentFilters = []Filter{byLocation, byProbeID}

// from is the start of every dashboard query: the default bucket over the
// dashboard's range, one measurement, fields matching `fields` (a Flux
// predicate on r._field), and the variable filters.
func from(measurement, fields string, filters ...Filter) string {
	var b strings.Builder
	b.WriteString("from(bucket: v.defaultBucket)\n")
	b.WriteString("  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n")
	fmt.Fprintf(&b, "  |> filter(fn: (r) => r._measurement == %q and %s)\n", measurement, fields)
	for _, f := range filters {
		fmt.Fprintf(&b, "  |> filter(fn: (r) => %s)\n", f)
	}
	return b.String()
}

// field is the predicate for one field.
func field(name string) string { return fmt.Sprintf("r._field == %q", name) }

// fields is the predicate for a set of fields.
func fields(names ...string) string {
	return fmt.Sprintf("contains(value: r._field, set: [%s])", quoteAll(names))
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// pipe appends Flux pipeline stages, one per line.
func pipe(q string, stages ...string) string {
	var b strings.Builder
	b.WriteString(q)
	for _, s := range stages {
		b.WriteString("  |> ")
		b.WriteString(s)
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// meanPerWindow aggregates each series to one mean per dashboard interval.
const meanPerWindow = "aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)"

// tagValues is a variable query: the values of `tag` in `measurement` over
// the dashboard range, narrowed by the filters of the variables before it.
func tagValues(measurement, tag string, filters ...Filter) string {
	pred := fmt.Sprintf("r._measurement == %q", measurement)
	for _, f := range filters {
		pred += " and " + string(f)
	}
	return fmt.Sprintf("import \"influxdata/influxdb/schema\"\n\n"+
		"schema.tagValues(\n  bucket: v.defaultBucket,\n  tag: %q,\n  predicate: (r) => %s,\n"+
		"  start: v.timeRangeStart,\n  stop: v.timeRangeStop,\n)", tag, pred)
}

// heartbeatAge is the age in seconds (at the end of the range) of each
// agent's last probe_health point, over the last `lookback` rather than the
// dashboard range, so an agent that stopped entirely stays visible. The
// last point of each series (pushed down to storage) is taken first, then
// the newest per agent, so an optional `instance` tag (one series per
// systemd instance) still gives one row per probe_id.
func heartbeatAge(lookback string, filters ...Filter) string {
	var b strings.Builder
	b.WriteString("from(bucket: v.defaultBucket)\n")
	fmt.Fprintf(&b, "  |> range(start: -%s, stop: v.timeRangeStop)\n", lookback)
	b.WriteString("  |> filter(fn: (r) => r._measurement == \"probe_health\" and r._field == \"uptime_s\")\n")
	for _, f := range filters {
		fmt.Fprintf(&b, "  |> filter(fn: (r) => %s)\n", f)
	}
	return pipe(b.String(),
		"last()",
		`group(columns: ["probe_id", "location"])`,
		`sort(columns: ["_time"])`,
		"last()",
		`map(fn: (r) => ({probe_id: r.probe_id, location: r.location, _time: r._time, _value: float(v: uint(v: v.timeRangeStop) - uint(v: r._time)) / 1000000000.0}))`,
	)
}

// withAgent is agentFilters followed by more filters, in a new slice.
func withAgent(more ...Filter) []Filter {
	return append(append([]Filter{}, agentFilters...), more...)
}
