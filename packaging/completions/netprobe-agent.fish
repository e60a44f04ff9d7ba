complete -c netprobe-agent -l config -d 'Agent config (TOML, see DESIGN.md "Configuration")' -r -F
complete -c netprobe-agent -l only -d 'Limit to these probe types (comma-separated: icmp,dns,http). With it, the agent is the instance named by these types (`icmp`, `dns+http`): its registry record and heartbeats carry `instance`' -r
complete -c netprobe-agent -l health-check -d 'Run every configured probe once, print the wire JSON (one object per line), exit 1 if any failed. Needs no Kafka'
complete -c netprobe-agent -s h -l help -d 'Print help'
complete -c netprobe-agent -s V -l version -d 'Print version'
