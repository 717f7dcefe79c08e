#!/usr/bin/env bash
# scripts/install-extension with HOME in a temporary directory: the host
# manifest it writes (valid JSON, the host's absolute path, the extension's
# id as the only allowed origin), the browsers it picks, --uninstall, its
# refusals (exit 2 with the usage), and shellcheck over the script.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
script="$root/scripts/install-extension"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $1"
  failures=$((failures + 1))
}

# The id Chromium gives the unpacked extension, computed apart from the script.
expected_id=$(python3 - "$root/extension/manifest.json" <<'PY'
import base64, hashlib, json, sys
key = json.load(open(sys.argv[1]))["key"]
digest = hashlib.sha256(base64.b64decode(key)).hexdigest()[:32]
print("".join(chr(ord("a") + int(c, 16)) for c in digest))
PY
)
name=$(sed -n "s/^export const HOST_NAME = '\(.*\)';/\1/p" "$root/extension/lib/protocol.js")
[[ -n $expected_id && -n $name ]] || { echo "FAIL: no id or host name"; exit 1; }

host="$tmp/bin dir/seckill_native_host"
mkdir -p "$(dirname "$host")"
printf '#!/bin/sh\nexit 0\n' >"$host"
chmod +x "$host"

# run <home> <args...>: the script's exit code in $rc, its output in $out.
run() {
  local home=$1
  shift
  out=$(HOME=$home "$script" "$@" 2>&1)
  rc=$?
}
check_manifest() {  # check_manifest <file>
  python3 - "$1" "$host" "$expected_id" "$name" <<'PY' || fail "manifest $1"
import json, os, sys
path, host, ext_id, name = sys.argv[1:]
m = json.load(open(path))
assert m["name"] == name, m["name"]
assert m["type"] == "stdio"
assert os.path.isabs(m["path"]) and m["path"] == host, m["path"]
assert m["allowed_origins"] == ["chrome-extension://%s/" % ext_id], m["allowed_origins"]
PY
}

# Installs for Chromium when no browser directory exists.
home="$tmp/home1"
mkdir -p "$home"
run "$home" --host "$host"
[[ $rc == 0 ]] || fail "install: exit $rc: $out"
check_manifest "$home/.config/chromium/NativeMessagingHosts/$name.json"
[[ ! -e $home/.config/google-chrome ]] || fail "install wrote for Chrome too"
grep -q "Load unpacked" <<<"$out" || fail "no loading instructions: $out"
grep -q "$expected_id" <<<"$out" || fail "the id is not printed"

# A relative --host becomes absolute.
(cd "$tmp" && HOME="$home" "$script" --host "bin dir/seckill_native_host" >/dev/null) || fail "relative host"
check_manifest "$home/.config/chromium/NativeMessagingHosts/$name.json"

# Chrome only, when only its directory exists; both with --browser all.
home="$tmp/home2"
mkdir -p "$home/.config/google-chrome"
run "$home" --host "$host"
[[ $rc == 0 ]] || fail "chrome install: exit $rc"
check_manifest "$home/.config/google-chrome/NativeMessagingHosts/$name.json"
[[ ! -e $home/.config/chromium ]] || fail "wrote for Chromium without its directory"
run "$home" --host="$host" --browser all
check_manifest "$home/.config/chromium/NativeMessagingHosts/$name.json"

# --uninstall removes them, and says so.
run "$home" --uninstall --browser all
[[ $rc == 0 ]] || fail "uninstall: exit $rc"
[[ ! -e $home/.config/chromium/NativeMessagingHosts/$name.json &&
   ! -e $home/.config/google-chrome/NativeMessagingHosts/$name.json ]] || fail "uninstall left a manifest"
grep -q "removed" <<<"$out" || fail "uninstall says nothing: $out"

# Refusals: exit 2, the reason and the usage, nothing written.
home="$tmp/home3"
mkdir -p "$home"
refused() {  # refused <message part> <args...>
  local want=$1
  shift
  run "$home" "$@"
  [[ $rc == 2 ]] || fail "'$*' exited $rc, not 2"
  grep -qF -- "$want" <<<"$out" || fail "'$*' did not say '$want': $out"
  grep -qF -- "--uninstall" <<<"$out" || fail "'$*' printed no usage"
}
refused "the host '$tmp/none' is no executable file" --host "$tmp/none"
refused "is no executable file" --host "$tmp"
refused "unknown option '--frobnicate'" --frobnicate
refused "--browser must be chromium, chrome or all, got 'firefox'" --browser firefox --host "$host"
refused "--host needs the path" --host
[[ ! -e $home/.config ]] || fail "a refused run wrote something"

if command -v shellcheck >/dev/null; then
  shellcheck "$script" "$0" || fail "shellcheck"
else
  echo "shellcheck is not installed: not checked"
fi
if ((failures > 0)); then
  echo "$failures failed"
  exit 1
fi
echo "install-extension: all checks passed"
