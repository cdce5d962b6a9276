# Shared by scripts/run and scripts/test: installing what gotv needs on a bare Debian machine.
# Sourced, not run.

GOTV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$GOTV_ROOT/.venv"
# Every process these scripts start (web, workers, test servers) imports gotv: with bytecode
# writing off, as some shells set it, each would compile it all from source again.
unset PYTHONDONTWRITEBYTECODE

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root to run: $*"; return 1
  fi
}

# ensure_debian_packages PACKAGE... : apt-get install the ones not installed yet.
ensure_debian_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# ensure_uv : uv, at the version and hashes scripts/uv-requirements.txt pins, in .tools; sets UV.
ensure_uv() {
  local tools="$GOTV_ROOT/.tools" pins="$GOTV_ROOT/scripts/uv-requirements.txt"
  UV="$tools/bin/uv"
  if [ ! -x "$UV" ] || [ "$pins" -nt "$UV" ]; then
    say "installing uv (scripts/uv-requirements.txt)"
    python3 -m venv "$tools"
    # (grep drops this machine's notes about missing local package mirrors, nothing else)
    "$tools/bin/pip" install -q --disable-pip-version-check --require-hashes -r "$pins" 2>&1 \
      | { grep -v "^WARNING: Location .* is ignored" || true; }
    touch "$UV"
  fi
}

# ensure_venv EXTRAS [--inexact] : .venv holding exactly the versions uv.lock pins (with their
# hashes) for gotv and those extras (comma-separated), gotv itself editable. --locked refuses a
# lock that no longer matches pyproject.toml: that is CI's check that the two agree. --inexact
# leaves other installed packages alone (scripts/run after scripts/test keeps the dev tools).
ensure_venv() {
  local extras=() extra
  for extra in ${1//,/ }; do extras+=(--extra "$extra"); done
  ensure_uv
  ensure_c_compiler
  UV_PROJECT_ENVIRONMENT="$VENV" UV_PYTHON=python3 UV_PYTHON_DOWNLOADS=never \
    "$UV" sync --locked --quiet "${extras[@]}" "${@:2}"
  export PATH="$VENV/bin:$PATH"
}

# ensure_c_compiler : what building a C extension from source needs (gunicorn's fast HTTP
# parser has no wheel): a C compiler, and the headers of the python3 the venv is made from.
ensure_c_compiler() {
  command -v cc >/dev/null || ensure_debian_packages gcc libc6-dev
  python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(
    os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || ensure_debian_packages python3-dev
}

# free_port : print a TCP port nobody listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_postgres WORKDIR : a private PostgreSQL in WORKDIR/pg on a free port, database gotv_test;
# sets pg_bin, pg_port and as_postgres; stop_postgres WORKDIR stops it.
start_postgres() {
  local work=$1
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  as_postgres=""
  if [ "$(id -u)" = 0 ]; then chown postgres "$work"; as_postgres="runuser -u postgres --"; fi
  pg_port=$(free_port)
  $as_postgres "$pg_bin/initdb" -D "$work/pg" -U gotv -A trust --no-sync >/dev/null
  $as_postgres "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start \
    -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
    >/dev/null
  "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U gotv gotv_test
}

stop_postgres() {
  [ -n "${pg_bin:-}" ] && $as_postgres "$pg_bin/pg_ctl" -D "$1/pg" -m immediate stop >/dev/null 2>&1
  return 0
}

# start_redis WORKDIR : a private Redis on a free port, no persistence; sets redis_port.
start_redis() {
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --logfile "$1/redis.log" >/dev/null
}

stop_redis() {
  [ -n "${redis_port:-}" ] && redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1
  return 0
}

# start_s3 WORKDIR : moto's S3-compatible server (installed in .venv from uv.lock) on a free
# port, in the background; sets s3_port and s3_pid. wait_for_s3 waits until it answers (it takes
# a few seconds to start: start it early); stop_s3 stops it.
start_s3() {
  s3_port=$(free_port)
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$1/s3.log" 2>&1 &
  s3_pid=$!
}

wait_for_s3() {
  local waited=0
  until python3 -c "import socket; socket.create_connection(('127.0.0.1', $s3_port), 1).close()" \
      2>/dev/null; do
    if ! kill -0 "$s3_pid" 2>/dev/null || [ "$waited" -ge 600 ]; then
      say "the S3 server did not start:"; cat "$1/s3.log" >&2; return 1
    fi
    sleep 0.2; waited=$((waited + 1))
  done
}

stop_s3() {
  if [ -n "${s3_pid:-}" ]; then kill "$s3_pid" 2>/dev/null || true; wait "$s3_pid" 2>/dev/null || true; fi
  return 0
}

# start_both WORKDIR : start_postgres and start_redis.
start_both() {
  start_postgres "$1"
  start_redis "$1"
}

# ruff_both : ruff's lint and its format check.
ruff_both() {
  ruff check .
  ruff format --check .
}
