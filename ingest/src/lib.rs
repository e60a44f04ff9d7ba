//! netprobe-ingest library: decode -> points (line protocol) -> sink
//! (InfluxDB v2), offsets committed only after the write. Empty so far.
