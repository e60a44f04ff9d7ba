package main

// The InfluxDB (Flux) query model, which the foundation SDK does not ship:
// a dataquery variant registered under the plugin id "influxdb" with a
// strict unmarshaler, so the SDK's strict dashboard decoding rejects any
// key a Flux target does not have.

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// DatasourceUID is the uid of the provisioned InfluxDB datasource; every
// panel, variable, annotation and alert query references it.
const DatasourceUID = "netprobe-influxdb"

// DatasourceType is the Grafana plugin id of InfluxDB.
const DatasourceType = "influxdb"

// datasourceRef is the reference every query carries.
func datasourceRef() common.DataSourceRef {
	t, u := DatasourceType, DatasourceUID
	return common.DataSourceRef{Type: &t, Uid: &u}
}

// FluxQuery is one InfluxDB Flux target as Grafana stores it.
type FluxQuery struct {
	RefId      *string               `json:"refId,omitempty"`
	Hide       *bool                 `json:"hide,omitempty"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	Query      string                `json:"query"`
	// Alert queries also carry these two (Grafana adds them when saving).
	IntervalMs    *float64 `json:"intervalMs,omitempty"`
	MaxDataPoints *int64   `json:"maxDataPoints,omitempty"`
}

func (FluxQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the plugin id.
func (FluxQuery) DataqueryType() string { return DatasourceType }

// Validate: a Flux target needs a query and a datasource of type influxdb.
func (q FluxQuery) Validate() error {
	var errs cog.BuildErrors
	if q.Query == "" {
		errs = append(errs, cog.MakeBuildErrors("query", fmt.Errorf("empty Flux query"))...)
	}
	if q.Datasource == nil || q.Datasource.Type == nil || *q.Datasource.Type != DatasourceType {
		errs = append(errs, cog.MakeBuildErrors("datasource", fmt.Errorf("datasource type must be %q", DatasourceType))...)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// Equals compares two targets.
func (q FluxQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(FluxQuery)
	if !ok {
		if p, isPtr := other.(*FluxQuery); isPtr {
			o, ok = *p, true
		}
	}
	if !ok {
		return false
	}
	a, _ := json.Marshal(q)
	b, _ := json.Marshal(o)
	return bytes.Equal(a, b)
}

// FluxVariantConfig registers FluxQuery with the SDK's runtime.
func FluxVariantConfig() variants.DataqueryConfig {
	return variants.DataqueryConfig{
		Identifier: DatasourceType,
		DataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			q := FluxQuery{}
			if err := json.Unmarshal(raw, &q); err != nil {
				return nil, err
			}
			return q, nil
		},
		StrictDataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			q := FluxQuery{}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&q); err != nil {
				return nil, fmt.Errorf("influxdb target: %w", err)
			}
			if q.Query == "" {
				return nil, fmt.Errorf("influxdb target: missing required field 'query'")
			}
			return q, nil
		},
	}
}

// FluxQueryBuilder builds a FluxQuery.
type FluxQueryBuilder struct{ q FluxQuery }

var _ cog.Builder[variants.Dataquery] = (*FluxQueryBuilder)(nil)

// Flux starts a target with the given Flux text on the netprobe datasource.
func Flux(query string) *FluxQueryBuilder {
	ref := datasourceRef()
	return &FluxQueryBuilder{q: FluxQuery{Query: query, Datasource: &ref}}
}

// RefId sets the target's ref id.
func (b *FluxQueryBuilder) RefId(refId string) *FluxQueryBuilder {
	b.q.RefId = &refId
	return b
}

// Build returns the target.
func (b *FluxQueryBuilder) Build() (variants.Dataquery, error) { return b.q, nil }
