# shellcheck shell=bash
# Cached installers and helpers for scripts/package and scripts/deploy-check:
# cargo-deb (cargo install), Debian packages (apt), ansible-core and
# ansible-lint (a Python venv), OpenTofu and the Terraform providers (built
# from their Go modules). Everything lands under $NETPROBE_CACHE (default
# ~/.cache/netprobe) and is reused by later runs.

NETPROBE_CACHE=${NETPROBE_CACHE:-$HOME/.cache/netprobe}
CARGO_DEB_VERSION=3.8.0
CARGO_DEB="$NETPROBE_CACHE/cargo-deb-$CARGO_DEB_VERSION/bin/cargo-deb"
ANSIBLE_CORE_VERSION=2.19.14
ANSIBLE_LINT_VERSION=26.10.1
ANSIBLE_VENV="$NETPROBE_CACHE/ansible-$ANSIBLE_CORE_VERSION-lint-$ANSIBLE_LINT_VERSION"
DEB_PACKAGES="netprobe-agent netprobe-ingest netprobe-replay"

dlog() { printf '[deploy] %s\n' "$*" >&2; }
die() { printf '[deploy] error: %s\n' "$*" >&2; exit 1; }

# The cargo target directory (CARGO_TARGET_DIR or the workspace's target/).
cargo_target_dir() {
    cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'
}

# apt-get install the Debian packages named that are not installed yet.
ensure_apt() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    dlog "installing Debian packages: ${missing[*]}"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# cargo-deb, built once by cargo install into the cache.
install_cargo_deb() {
    [ -x "$CARGO_DEB" ] && return 0
    dlog "cargo install cargo-deb $CARGO_DEB_VERSION into $NETPROBE_CACHE (cold: about a minute)"
    CARGO_INSTALL_ROOT="$NETPROBE_CACHE/cargo-deb-$CARGO_DEB_VERSION" \
        CARGO_TARGET_DIR="$NETPROBE_CACHE/cargo-deb-$CARGO_DEB_VERSION/build" \
        cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet \
        || die "cargo install cargo-deb $CARGO_DEB_VERSION failed"
    rm -rf "$NETPROBE_CACHE/cargo-deb-$CARGO_DEB_VERSION/build"
}

# ansible-core and ansible-lint in their own venv.
install_ansible() {
    [ -x "$ANSIBLE_VENV/bin/ansible-lint" ] && [ -x "$ANSIBLE_VENV/bin/ansible-playbook" ] && return 0
    dlog "installing ansible-core $ANSIBLE_CORE_VERSION and ansible-lint $ANSIBLE_LINT_VERSION into $ANSIBLE_VENV"
    rm -rf "$ANSIBLE_VENV"
    python3 -c 'import ensurepip' 2>/dev/null || ensure_apt python3-venv
    python3 -m venv "$ANSIBLE_VENV" || die "python3 -m venv failed (apt package python3-venv?)"
    "$ANSIBLE_VENV/bin/pip" install -q --disable-pip-version-check \
        "ansible-core==$ANSIBLE_CORE_VERSION" "ansible-lint==$ANSIBLE_LINT_VERSION" \
        || { rm -rf "$ANSIBLE_VENV"; die "pip install ansible-core/ansible-lint failed"; }
}

# OpenTofu (MPL-2.0; runs the same .tf files offline as Terraform, whose
# releases since 1.6 are under the BSL) and the providers, built from their
# Go modules. `go install` refuses these modules (replace directives, or a
# version list the proxy does not serve), so each is downloaded, copied out
# of the module cache, made writable and built in place.
TOFU_VERSION=v1.10.10
HCLOUD_PROVIDER_VERSION=1.52.0
LOCAL_PROVIDER_VERSION=1.4.0
TOFU_BIN="$NETPROBE_CACHE/tofu-$TOFU_VERSION/tofu"
PROVIDER_MIRROR="$NETPROBE_CACHE/terraform-providers"

# go_build_module MODULE VERSION PACKAGE OUTPUT: builds PACKAGE of MODULE@VERSION into OUTPUT.
go_build_module() {
    local module=$1 version=$2 pkg=$3 output=$4 work src
    command -v go >/dev/null || die "go not found (Go builds $module)"
    work=$(mktemp -d "$NETPROBE_CACHE/gobuild.XXXXXX")
    src=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$src" ] || { rm -rf "$work"; die "could not download $module@$version"; }
    cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
    mkdir -p "$(dirname "$output")"
    (cd "$work/src" && CGO_ENABLED=0 go build -trimpath -o "$output.tmp" "$pkg") \
        || { rm -rf "$work"; die "go build of $module@$version failed (see above)"; }
    mv "$output.tmp" "$output"
    rm -rf "$work"
}

install_tofu() {
    [ -x "$TOFU_BIN" ] && return 0
    dlog "building OpenTofu $TOFU_VERSION from its Go module (cold: a few minutes)"
    go_build_module github.com/opentofu/opentofu "$TOFU_VERSION" ./cmd/tofu "$TOFU_BIN"
}

# The filesystem mirror: registry.terraform.io/OWNER/NAME/VERSION/linux_amd64/terraform-provider-NAME_vVERSION
install_providers() {
    local hcloud="$PROVIDER_MIRROR/registry.terraform.io/hetznercloud/hcloud/$HCLOUD_PROVIDER_VERSION/linux_amd64/terraform-provider-hcloud_v$HCLOUD_PROVIDER_VERSION"
    local local_p="$PROVIDER_MIRROR/registry.terraform.io/hashicorp/local/$LOCAL_PROVIDER_VERSION/linux_amd64/terraform-provider-local_v$LOCAL_PROVIDER_VERSION"
    if [ ! -x "$hcloud" ]; then
        dlog "building terraform-provider-hcloud $HCLOUD_PROVIDER_VERSION from its Go module (cold: about 2 minutes)"
        go_build_module github.com/hetznercloud/terraform-provider-hcloud "v$HCLOUD_PROVIDER_VERSION" . "$hcloud"
    fi
    if [ ! -x "$local_p" ]; then
        dlog "building terraform-provider-local $LOCAL_PROVIDER_VERSION from its Go module"
        go_build_module github.com/hashicorp/terraform-provider-local "v$LOCAL_PROVIDER_VERSION" . "$local_p"
    fi
    # The same files under OpenTofu's registry host (it resolves
    # hetznercloud/hcloud to registry.opentofu.org; mirrors are not read
    # through symlinks).
    rm -rf "$PROVIDER_MIRROR/registry.opentofu.org"
    cp -al "$PROVIDER_MIRROR/registry.terraform.io" "$PROVIDER_MIRROR/registry.opentofu.org"
}
