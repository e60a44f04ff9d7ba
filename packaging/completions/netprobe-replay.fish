complete -c netprobe-replay -l config -d 'Replay config: TOML with [kafka] (the `replay` principal), [influx] and an optional [replay] table' -r -F
complete -c netprobe-replay -l topics -d 'Topics to read, comma-separated, without the config\'s topic_prefix [default: the seven probe topics]. `ingest.dlq` re-drives the DLQ' -r
complete -c netprobe-replay -l probe-id -d 'Only messages of this agent (repeatable)' -r
complete -c netprobe-replay -l metric-type -d 'Only messages of this kind (repeatable)' -r -f -a "icmp\t''
dns\t''
http\t''
mtr\t''
bgp\t''
registry\t''
health\t''"
complete -c netprobe-replay -l target -d 'Only messages about this target (repeatable): the icmp/mtr target, the http url, the dns resolver or the bgp prefix, exactly' -r
complete -c netprobe-replay -l start -d 'Start of the range (inclusive), by the message\'s own timestamp: RFC 3339 (`2026-11-20T00:00:00Z`) or a duration before now (`24h`)' -r
complete -c netprobe-replay -l end -d 'End of the range (exclusive), same forms as --start [default: now]' -r
complete -c netprobe-replay -l bucket -d 'Write into this bucket instead of the config\'s [influx] bucket' -r
complete -c netprobe-replay -l output -d 'Where points go' -r -f -a "influx\t'Write to InfluxDB (`/api/v2/write`)'
lp\t'Write line protocol to `--out` or stdout'"
complete -c netprobe-replay -l out -d 'With --output lp: the file to write [default: stdout]' -r -F
complete -c netprobe-replay -l max-rate -d 'Messages written per second at most, so a backfill leaves InfluxDB to the live ingest [default: unlimited]' -r
complete -c netprobe-replay -l late-grace -d 'How long after --end (by Kafka timestamp) a partition is still read for messages that reached Kafka late (spooled by an agent)' -r
complete -c netprobe-replay -l dry-run -d 'Read, filter and count; write nothing'
complete -c netprobe-replay -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netprobe-replay -s V -l version -d 'Print version'
