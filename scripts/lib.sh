# Shared by scripts/run and scripts/test: installing what gotv needs on a bare Debian machine.
# Sourced, not run.

GOTV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$GOTV_ROOT/.venv"

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

# ensure_venv EXTRAS : a virtualenv in .venv with gotv installed (editable) with those extras.
ensure_venv() {
  local extras=$1 stamp="$VENV/.installed-$1"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating a virtual environment in .venv"
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ "$GOTV_ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "installing Python packages (.[$extras])"
    # (grep drops this machine's notes about missing local package mirrors, nothing else)
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$GOTV_ROOT[$extras]" 2>&1 \
      | { grep -v "^WARNING: Location .* is ignored" || true; }
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

# free_port : print a TCP port nobody listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
