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

if [[ ${MAFALDA_SKIP_BROWSER:-} != 1 ]] && ! command -v chromium >/dev/null; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		log "installing Debian's chromium for the real-client tests"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else
		log "chromium is missing: the real-client tests need 'sudo apt-get install -y chromium'"
	fi
fi

npx tsc -p tsconfig.build.json
log "ready"
