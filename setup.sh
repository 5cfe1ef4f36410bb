#!/usr/bin/env bash
# lpc set-up: npm dependencies (which also builds dist/), then make sure Dawn finds a WebGPU adapter.
# Installs redis-server (Debian's package) when missing, for distributed sweeps and their tests.
# Where there is no GPU it installs a CPU Vulkan driver: Mesa 25 lavapipe from bookworm-backports
# (bookworm's own Mesa 22 is rejected by Dawn), else SwiftShader from chromium-common.
# Idempotent: a second run reinstalls npm packages and finds the adapter already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Mesa writes its shader cache to ~/.cache unless told otherwise; keep it in the (gitignored) repo.
export MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-$PWD/.mesa-cache}"
mkdir -p "$MESA_SHADER_CACHE_DIR"

# ---- npm -------------------------------------------------------------------------------------------------
status=0
npm_flags=(--no-audit --no-fund --loglevel=error)
npm_log=$(mktemp)
trap 'rm -f "$npm_log"' EXIT
npm_run() { "$@" "${npm_flags[@]}" >"$npm_log" 2>&1; }
say "installing npm dependencies"
npm_ok=1
if [[ ! -f package-lock.json ]]; then
  npm_run npm install || npm_ok=0
elif ! npm_run npm ci; then
  if grep -q 'EUSAGE' "$npm_log"; then
    # npm ci refuses, before touching anything, a lock file that is out of sync with package.json.
    say "warning: 'npm ci' says package-lock.json is out of sync with package.json; using 'npm install'"
    grep -m 3 '^npm error Missing' "$npm_log" || true
    npm_run npm install || npm_ok=0
  else
    npm_ok=0
  fi
fi
if [[ $npm_ok == 0 ]]; then
  cat "$npm_log"
  # `prepare` (tsc) runs last; if only it failed the dependencies are in place and the driver step can still run.
  [[ -d node_modules/webgpu ]] || die "npm could not install the dependencies (see above)"
  say "warning: npm failed after installing the dependencies, probably in the TypeScript build (see above); continuing"
  status=1
fi

SUDO=()
[[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null && SUDO=(sudo)
can_apt() { command -v apt-get >/dev/null && { [[ $(id -u) -eq 0 ]] || [[ ${#SUDO[@]} -gt 0 ]]; }; }
export DEBIAN_FRONTEND=noninteractive
apt_q=(-qq -o Dpkg::Use-Pty=0 -o APT::Color=0)
# apt-get -qq still prints debconf chatter on stderr; drop just that.
apt_install() { "${SUDO[@]}" apt-get "${apt_q[@]}" install -y --no-install-recommends "$@" > /dev/null 2> >(grep -v '^debconf:' >&2); }
apt_updated=0
apt_update() { [[ $apt_updated == 1 ]] || "${SUDO[@]}" apt-get "${apt_q[@]}" update; apt_updated=1; }

# ---- Redis (distributed sweeps: lpc sweep --queue, lpc worker; their tests start private redis-servers) -------
if command -v redis-server >/dev/null; then
  say "redis-server found ($(redis-server --version | awk '{print $3}'))"
elif can_apt; then
  say "apt-get install redis-server (for distributed sweeps and their tests)"
  # only the binary is used: the tests start private servers on free ports (the package's own service may run or not)
  { apt_update && apt_install redis-server; } || say "warning: redis-server install failed; the distributed sweep tests will be skipped"
  command -v redis-server >/dev/null && say "redis-server installed"
else
  say "warning: no redis-server and no apt-get (or root): install Redis >= 6.2 or Valkey by hand; the distributed sweep tests will be skipped"
fi

# ---- WebGPU adapter --------------------------------------------------------------------------------------
probe() { node scripts/probe-adapter.mjs 2>/dev/null; }

if probe; then
  say "done (a WebGPU adapter is available)"
  exit "$status"
fi

if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || die "no WebGPU adapter, and installing a CPU Vulkan driver needs root (or sudo)"
fi
command -v apt-get >/dev/null || die "no WebGPU adapter and no apt-get: install a Vulkan driver (Mesa >= 24 lavapipe or SwiftShader) by hand"

. /etc/os-release
say "no WebGPU adapter: installing a CPU Vulkan driver (lavapipe) with apt"
apt_update

if [[ "${VERSION_CODENAME:-}" == bookworm ]]; then
  # deb822 entry for bookworm-backports, same mirror and key as the main Debian entry.
  src=/etc/apt/sources.list.d/debian.sources
  uris=http://deb.debian.org/debian
  key=/usr/share/keyrings/debian-archive-keyring.gpg
  if [[ -f $src ]]; then
    # first stanza that is not the security archive
    uris=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$src")
    key=$(awk '/^Signed-By:/ {print $2; exit}' "$src")
  fi
  bp=/etc/apt/sources.list.d/bookworm-backports.sources
  if [[ ! -f $bp ]]; then
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uris" "$key" |
      "${SUDO[@]}" tee "$bp" >/dev/null
    say "added $bp ($uris)"
    "${SUDO[@]}" apt-get "${apt_q[@]}" update
  fi
  say "apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1"
  apt_install -t bookworm-backports mesa-vulkan-drivers libvulkan1 || say "warning: lavapipe install failed"
else
  # Newer releases ship a Mesa that Dawn accepts.
  say "apt-get install mesa-vulkan-drivers libvulkan1"
  apt_install mesa-vulkan-drivers libvulkan1 || say "warning: lavapipe install failed"
fi

if probe; then
  say "done (CPU driver lavapipe installed)"
  exit "$status"
fi

# ---- fallback: SwiftShader -------------------------------------------------------------------------------
swiftshader=/usr/lib/chromium/vk_swiftshader_icd.json
say "lavapipe gave no adapter; trying SwiftShader from chromium-common"
apt_install chromium-common libvulkan1 || say "warning: chromium-common install failed"
if [[ -f $swiftshader ]] && VK_ICD_FILENAMES=$swiftshader probe; then
  say "done (SwiftShader). lpc picks it automatically; other tools need: export VK_ICD_FILENAMES=$swiftshader"
  exit "$status"
fi

die "still no WebGPU adapter after installing lavapipe and SwiftShader; run 'node scripts/probe-adapter.mjs' to see Dawn's messages"
