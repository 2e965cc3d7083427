#!/usr/bin/env bash
# Builds mediasoup-worker from the C++ sources that the mediasoup npm package ships,
# against Debian's libraries, with no download at all (no prebuilt binary, no meson
# subproject fetch, no pip). The binary is cached outside node_modules, keyed by the
# mediasoup version and this script's patch level, and copied to the path where
# mediasoup looks by default (node_modules/mediasoup/worker/out/Release/mediasoup-worker).
#
# Does nothing when MEDIASOUP_WORKER_BIN names an executable, or when a cached binary
# for this mediasoup version already exists.
set -euo pipefail

# Bump when the patches or stubs below change, so that a stale cached binary is not reused.
PATCH_LEVEL=1
DEBIAN_PACKAGES=(meson ninja-build pkg-config g++ libuv1-dev libssl-dev libsrtp2-dev libabsl-dev
	libusrsctp-dev libflatbuffers-dev flatbuffers-compiler)

log() { printf '[mafalda:worker] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"

if [[ -n "${MEDIASOUP_WORKER_BIN:-}" ]]; then
	[[ -x "$MEDIASOUP_WORKER_BIN" ]] || die "MEDIASOUP_WORKER_BIN=$MEDIASOUP_WORKER_BIN is not an executable file"
	log "using MEDIASOUP_WORKER_BIN=$MEDIASOUP_WORKER_BIN, building nothing"
	exit 0
fi

ms_dir=$(node -p "require('node:path').dirname(require.resolve('mediasoup/package.json'))" 2>/dev/null) ||
	die "mediasoup is not installed: run npm install first"
ms_version=$(node -p "require('$ms_dir/package.json').version")
cache_root="${MAFALDA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mafalda}"
cached_bin="$cache_root/mediasoup-worker-$ms_version-p$PATCH_LEVEL"
target_bin="$ms_dir/worker/out/Release/mediasoup-worker"

install_binary() {
	mkdir -p "$(dirname "$target_bin")"
	if ! cmp -s "$cached_bin" "$target_bin" 2>/dev/null; then
		cp "$cached_bin" "$target_bin.tmp"
		mv -f "$target_bin.tmp" "$target_bin"
	fi
	log "mediasoup-worker $ms_version ready at $target_bin"
}

if [[ -x "$cached_bin" ]]; then
	log "cached build found: $cached_bin"
	install_binary
	exit 0
fi

# --- Debian packages -------------------------------------------------------------------
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		log "installing Debian packages: ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		die "missing Debian packages; install them with:
  sudo apt-get install -y ${missing[*]}
then run this script again"
	fi
fi

# --- Sources, copied so that node_modules stays pristine --------------------------------
build_root="$cache_root/build-$ms_version-p$PATCH_LEVEL"
src="$build_root/worker"
rm -rf "$build_root"
mkdir -p "$build_root"
cp -r "$ms_dir/worker" "$src"
rm -rf "$src/out" "$src/subprojects/packagecache"

# Debian bookworm ships meson 1.0.1; the worker builds with it.
sed -i "s/meson_version: '>= 1.1.0'/meson_version: '>= 1.0.0'/" "$src/meson.build"

# Debian's OpenSSL has kernel-TLS support: the memory BIO's callback must pass OpenSSL's
# return value through for every BIO_CB_RETURN phase, or OpenSSL believes kTLS is active
# and the worker crashes in SSL_read on the first DTLS handshake.
dtls="$src/src/RTC/DtlsTransport.cpp"
grep -q '(operationType == BIO_CB_RETURN) ? static_cast<long>(ret) : 1' "$dtls" ||
	die "DtlsTransport.cpp does not have the expected BIO callback line (mediasoup $ms_version)"
sed -i 's/(operationType == BIO_CB_RETURN) ? static_cast<long>(ret) : 1/(operationType \& BIO_CB_RETURN) ? static_cast<long>(ret) : 1/' "$dtls"

# --- Subprojects: local directories that wrap Debian's libraries --------------------------
# Meson uses an existing subproject directory instead of downloading; each one defines the
# variables that the worker's meson.build reads, with an empty static library where the
# worker wants something to link_whole.
wrap_dir() { sed -n 's/^directory *= *//p' "$src/subprojects/$1.wrap"; }
stub_subproject() { # name, body
	local dir="$src/subprojects/$(wrap_dir "$1")"
	rm -rf "$dir"
	mkdir -p "$dir"
	printf '/* empty: the library comes from Debian */\n' >"$dir/empty.c"
	printf "project('%s', 'c', 'cpp')\nempty_lib = static_library('%s_empty', 'empty.c')\n%s\n" "$1" "$1" "$2" >"$dir/meson.build"
	# The options the worker passes to this subproject must exist, even if unused.
	case "$1" in
	libuv) printf "option('build_tests', type: 'boolean', value: false)\noption('build_benchmarks', type: 'boolean', value: false)\n" ;;
	libsrtp2) printf "option('crypto-library', type: 'string', value: 'openssl')\noption('crypto-library-kdf', type: 'string', value: 'disabled')\noption('tests', type: 'string', value: 'disabled')\n" ;;
	usrsctp) printf "option('sctp_build_programs', type: 'boolean', value: false)\n" ;;
	*) : ;;
	esac >"$dir/meson_options.txt"
	printf '%s\n' "$dir"
}

stub_subproject openssl "
openssl_dep = dependency('openssl')
libcrypto_lib = empty_lib
libssl_lib = empty_lib" >/dev/null

stub_subproject libuv "
libuv_dep = dependency('libuv')
libuv = empty_lib" >/dev/null

srtp_dir=$(stub_subproject libsrtp2 "
libsrtp2_dep = declare_dependency(
  dependencies: dependency('libsrtp2'),
  compile_args: ['-I/usr/include/srtp2', '-include', meson.current_source_dir() / 'srtp3_compat.hpp'],
)
libsrtp2 = empty_lib")
# mediasoup 3.14 calls the libsrtp 3 API; Debian ships libsrtp 2. Bridge the differences.
cat >"$srtp_dir/srtp3_compat.hpp" <<'EOF'
#pragma once
#ifdef __cplusplus
#include <srtp2/srtp.h>
#include <cstddef>
inline srtp_err_status_t srtp_stream_remove(srtp_t session, uint32_t ssrc)
{
	return srtp_remove_stream(session, ssrc);
}
#define MAFALDA_SRTP_SIZE_T_WRAPPER(name) \
	inline srtp_err_status_t name(srtp_t session, void* data, size_t* len) \
	{ \
		int length = static_cast<int>(*len); \
		const srtp_err_status_t err = name(session, data, &length); \
		*len = static_cast<size_t>(length); \
		return err; \
	}
MAFALDA_SRTP_SIZE_T_WRAPPER(srtp_protect)
MAFALDA_SRTP_SIZE_T_WRAPPER(srtp_unprotect)
MAFALDA_SRTP_SIZE_T_WRAPPER(srtp_protect_rtcp)
MAFALDA_SRTP_SIZE_T_WRAPPER(srtp_unprotect_rtcp)
#undef MAFALDA_SRTP_SIZE_T_WRAPPER
#endif
EOF

stub_subproject usrsctp "
usrsctp_dep = dependency('usrsctp')
usrsctp = empty_lib" >/dev/null

stub_subproject abseil-cpp "
absl_container_dep = declare_dependency(dependencies: [
  dependency('absl_flat_hash_map'), dependency('absl_flat_hash_set'),
  dependency('absl_btree'), dependency('absl_inlined_vector'),
])
absl_strings_dep = dependency('absl_strings')
absl_types_dep = declare_dependency(dependencies: [dependency('absl_optional'), dependency('absl_memory')])
absl_container_lib = empty_lib" >/dev/null

stub_subproject flatbuffers "
flatbuffers_dep = dependency('flatbuffers')
flatbuffers_lib = empty_lib" >/dev/null

stub_subproject catch2 "
catch2_dep = declare_dependency()" >/dev/null

# --- Build ------------------------------------------------------------------------------
log "building mediasoup-worker $ms_version from source (takes a few minutes)"
cd "$src"
meson setup out/Release --buildtype=release --wrap-mode=nodownload -Dms_disable_liburing=true \
	-Db_ndebug=true >"$build_root/meson.log" 2>&1 || { tail -40 "$build_root/meson.log" >&2; die "meson setup failed (log: $build_root/meson.log)"; }
# The FlatBuffers headers first: libwebrtc's sources include them.
ninja -C out/Release fbs/FBS >"$build_root/ninja.log" 2>&1 &&
	ninja -C out/Release -j"$(nproc)" mediasoup-worker >>"$build_root/ninja.log" 2>&1 ||
	{ tail -40 "$build_root/ninja.log" >&2; die "build failed (log: $build_root/ninja.log)"; }

mkdir -p "$cache_root"
cp out/Release/mediasoup-worker "$cached_bin.tmp"
strip "$cached_bin.tmp" 2>/dev/null || true
mv -f "$cached_bin.tmp" "$cached_bin"
cd "$root_dir"
rm -rf "$build_root"
install_binary
