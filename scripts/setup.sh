#!/usr/bin/env bash
# All set-up in one idempotent step: npm dependencies (without letting mediasoup try to
# download its prebuilt worker), the mediasoup worker built from source (cached), the
# compiled library, and the Debian browser used by the real-client tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Everything this script prints is progress: keep stdout for the commands that follow it.
exec 1>&2

log() { printf '[mafalda:setup] %s\n' "$*" >&2; }

# mediasoup's postinstall would try GitHub and PyPI; MEDIASOUP_WORKER_BIN makes it skip.
# We build the worker ourselves right after.
stamp=node_modules/.mafalda-install-stamp
if [[ ! -f $stamp || package.json -nt $stamp || package-lock.json -nt $stamp ]]; then
	log "installing npm dependencies"
	if [[ -f package-lock.json ]]; then
		MEDIASOUP_WORKER_BIN=skip npm ci --no-audit --no-fund --loglevel=error
	else
		MEDIASOUP_WORKER_BIN=skip npm install --no-audit --no-fund --loglevel=error
	fi
	touch "$stamp"
fi

bash scripts/build-mediasoup-worker.sh

# The browser of the real-client tests: MAFALDA_CHROMIUM_PATH, or Debian's chromium (installed
# here when missing and we are root). MAFALDA_SKIP_BROWSER=1 installs nothing. Under CI (CI set,
# and not 0 or false) a missing browser fails the set-up: the real-client tests may not be skipped.
is_ci() { [[ -n ${CI:-} && ${CI,,} != 0 && ${CI,,} != false ]]; }
chromium_path=${MAFALDA_CHROMIUM_PATH:-/usr/bin/chromium}
if [[ ! -x $chromium_path && -z ${MAFALDA_CHROMIUM_PATH:-} && ${MAFALDA_SKIP_BROWSER:-} != 1 ]]; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		log "installing Debian's chromium for the real-client tests"
		apt-get update -qq || log "apt-get update failed"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || log "apt-get install chromium failed"
	fi
fi
if [[ ! -x $chromium_path ]]; then
	if is_ci; then
		log "ERROR: no Chromium at $chromium_path, and CI=$CI: the real-client tests may not be skipped."
		log "Install it ('sudo apt-get install -y chromium') or point MAFALDA_CHROMIUM_PATH at a Chromium."
		exit 1
	fi
	log "WARNING: no Chromium at $chromium_path: the real-client tests will be SKIPPED"
	log "(install it with 'sudo apt-get install -y chromium', or set MAFALDA_CHROMIUM_PATH)"
fi

npx tsc -p tsconfig.build.json
log "ready"
