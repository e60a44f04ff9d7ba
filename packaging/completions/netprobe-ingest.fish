complete -c netprobe-ingest -l config -d 'Ingest config (TOML with [kafka], [influx] and optional [ingest] tables)' -r -F
complete -c netprobe-ingest -s h -l help -d 'Print help'
complete -c netprobe-ingest -s V -l version -d 'Print version'
