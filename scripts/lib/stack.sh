# scripts/lib/stack.sh — sourced by the check scripts: a whole userstats stack of their own
# (nats-server with JetStream on free ports, every function, a temp directory) and the
# chores around it, written once.
#
#   source scripts/lib/stack.sh
#   stack_init check-web           # say/fail with that prefix, $tmp, cleanup on exit (--keep: keep=1)
#   stack_tools                    # $nats_bin, $py (the tools venv's python, with nats-py)
#   read -r a b < <(natsctl ports 2)
#   stack_nats "$port"             # starts nats-server, waits for it: $nats_url
#   stack_functions target/debug "$tmp/userstats.toml"   # every functions/* binary: $functions
#   natsctl wait-services "$nats_url" userstats-ingest-chat ...
#   start NAME LOG COMMAND...      # anything else, stopped in reverse order at exit
#
# Expects `set -euo pipefail`, ROOT as the checkout and the current directory there.

# say/fail with the script's name; $tmp; processes stopped in reverse start order at exit,
# the end of every log printed when the script fails.
stack_init() {
  STACK_NAME="$1"
  : "${keep:=0}"
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/$STACK_NAME.XXXXXX")"
  pids=() # "pid name", in start order
  trap stack_cleanup EXIT
  trap 'exit 130' INT TERM
}

say() { echo "$STACK_NAME: $*" >&2; }
fail() {
  say "FAIL: $*"
  exit 1
}

stack_cleanup() {
  local rc=$? i pid
  trap - EXIT INT TERM
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[i]%% *}"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $rc != 0 ]]; then
    say "logs of this run:"
    for f in "$tmp"/*.log; do
      [[ -f $f ]] || continue
      echo "--- ${f##*/} (last 15 lines)" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [[ $keep == 1 ]]; then say "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}

start() { # name logfile command...
  local name="$1" log="$2"
  shift 2
  "$@" >>"$log" 2>&1 &
  pids+=("$! $name")
}

alive() { # name: fails if that process has exited
  local line
  for line in "${pids[@]}"; do
    if [[ ${line#* } == "$1" ]] && ! kill -0 "${line%% *}" 2>/dev/null; then
      fail "$1 exited (see $tmp/$1.log)"
    fi
  done
}

stack_tools() {
  nats_bin="$(scripts/tools)"
  py="$(scripts/tools --python)"
}

natsctl() { "$py" "$ROOT/scripts/lib/natsctl.py" "$@"; }

# Installs a Debian package with apt-get when COMMAND is missing (root or sudo).
apt_ensure() { # package command...
  local package="$1" c missing=0
  shift
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing=1; done
  [[ $missing == 1 ]] || return 0
  command -v apt-get >/dev/null 2>&1 || fail "$package is not installed and there is no apt-get: install it ($*)"
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || fail "$package is not installed; run as root or: apt-get install -y $package"
    sudo=(sudo)
  fi
  say "installing the Debian package $package (apt-get)"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >&2; then
    "${sudo[@]}" apt-get update -q >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >&2 || fail "apt-get install $package failed"
  fi
}

# Builds (unless build=0) and checks that every function and `simulate` exist in BIN_DIR.
stack_binaries() { # target/debug | target/release
  local bin_dir="$1" name
  if [[ ${build:-1} == 1 ]]; then
    local profile=()
    [[ $bin_dir == target/release ]] && profile=(--release)
    say "cargo build ${profile[*]} --workspace --bins"
    cargo build ${profile[@]+"${profile[@]}"} --workspace --bins >&2 || fail "cargo build failed"
  fi
  functions=()
  for dir in functions/*/; do
    name="$(basename "$dir")"
    [[ -x $bin_dir/$name ]] || fail "$bin_dir/$name is missing (build first, or drop --no-build)"
    functions+=("$name")
  done
  [[ -x $bin_dir/simulate ]] || fail "$bin_dir/simulate is missing (build first, or drop --no-build)"
}

stack_nats() { # port
  nats_url="nats://127.0.0.1:$1"
  say "nats-server with JetStream on $nats_url (temp dir $tmp)"
  start nats-server "$tmp/nats-server.log" "$nats_bin" -js -sd "$tmp/nats" -a 127.0.0.1 -p "$1"
  natsctl wait-server "$nats_url" || fail "nats-server did not start (see $tmp/nats-server.log)"
}

stack_functions() { # bin_dir config
  local f
  for f in "${functions[@]}"; do
    start "$f" "$tmp/$f.log" "$1/$f" --config "$2"
  done
  say "started ${functions[*]} ($1)"
}
