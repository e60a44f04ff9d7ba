# shellcheck shell=bash
# Installers for the local stack: Apache Kafka jars from Maven Central and
# InfluxDB OSS (influxd) built from its Go module. Everything lands under
# $NETPROBE_CACHE (default ~/.cache/netprobe) and is reused by later runs;
# each installer is a no-op when its stamp file exists.

NETPROBE_CACHE=${NETPROBE_CACHE:-$HOME/.cache/netprobe}
KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}
INFLUXDB_VERSION=${INFLUXDB_VERSION:-v2.9.1}
PKG_CONFIG_VERSION=${PKG_CONFIG_VERSION:-v0.3.0}
GOBGP_VERSION=${GOBGP_VERSION:-v3.37.0}

KAFKA_LIB="$NETPROBE_CACHE/kafka-$KAFKA_VERSION/libs"
INFLUXD_BIN="$NETPROBE_CACHE/influxdb-$INFLUXDB_VERSION/influxd"
GOBGP_BIN="$NETPROBE_CACHE/gobgp-$GOBGP_VERSION/bin"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# Kafka broker + tools + a log4j2 SLF4J binding, copied into one libs folder.
install_kafka() {
    [ -f "$KAFKA_LIB/.complete" ] && return 0
    command -v mvn >/dev/null || die "mvn not found (Maven is needed to fetch the Kafka jars)"
    command -v java >/dev/null || die "java not found (JDK 17 runs Kafka)"
    log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIB"
    local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    mkdir -p "$KAFKA_LIB"
    mvn -B -q -f "$here/kafka-pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIB" -DincludeScope=runtime \
        || die "mvn could not fetch the Kafka jars (see output above)"
    touch "$KAFKA_LIB/.complete"
}

# influxd built from github.com/influxdata/influxdb/v2 with the machine's Go.
# `go install pkg@version` refuses the module (replace directives in go.mod),
# so the module is downloaded and built in place. Flux's Rust part (libflux)
# is compiled by cargo through influxdata/pkg-config used as PKG_CONFIG.
install_influxd() {
    [ -x "$INFLUXD_BIN" ] && return 0
    command -v go >/dev/null || die "go not found (Go builds influxd)"
    command -v cargo >/dev/null || die "cargo not found (Rust builds libflux)"
    local work="$NETPROBE_CACHE/influxdb-$INFLUXDB_VERSION"
    mkdir -p "$work"
    log "building influxd $INFLUXDB_VERSION from its Go module (cold: several minutes)"
    local src; src=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/influxdata/influxdb/v2@$INFLUXDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$src" ] || die "could not download github.com/influxdata/influxdb/v2@$INFLUXDB_VERSION"
    GOBIN="$work/bin" go install "github.com/influxdata/pkg-config@$PKG_CONFIG_VERSION" \
        || die "could not build influxdata/pkg-config"
    rm -rf "$work/src" && cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
    (
        cd "$work/src" &&
        unset CARGO_TARGET_DIR &&
        export RUSTUP_TOOLCHAIN=stable PKG_CONFIG="$work/bin/pkg-config" &&
        go build -o "$INFLUXD_BIN.tmp" -tags sqlite_foreign_keys,sqlite_json ./cmd/influxd
    ) || die "influxd build failed (see output above)"
    mv "$INFLUXD_BIN.tmp" "$INFLUXD_BIN"
    rm -rf "$work/src"
}

# GoBGP (gobgpd + gobgp CLI) from its Go module, for the BMP station test
# (agent/tests/bgp_bmp.rs looks in $GOBGP_BIN, or $NETPROBE_GOBGP_BIN).
install_gobgp() {
    [ -x "$GOBGP_BIN/gobgpd" ] && [ -x "$GOBGP_BIN/gobgp" ] && return 0
    command -v go >/dev/null || die "go not found (Go builds gobgpd)"
    log "building GoBGP $GOBGP_VERSION (gobgpd, gobgp) into $GOBGP_BIN (cold: about a minute)"
    mkdir -p "$GOBGP_BIN"
    GOBIN="$GOBGP_BIN.tmp" go install "github.com/osrg/gobgp/v3/cmd/gobgpd@$GOBGP_VERSION" \
        "github.com/osrg/gobgp/v3/cmd/gobgp@$GOBGP_VERSION" || die "could not build GoBGP $GOBGP_VERSION"
    mv "$GOBGP_BIN.tmp/gobgpd" "$GOBGP_BIN.tmp/gobgp" "$GOBGP_BIN/" && rmdir "$GOBGP_BIN.tmp"
}
