# Sourced by scripts/demo and scripts/test: make .venv and install the project into it.
# Re-installs only when pyproject.toml changed, so a second run starts at once.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
extras="${1:-}"
py="${PYTHON:-python3}"
# pip's chatter goes to a log that is shown only when an install fails.
quiet() { "$@" > .venv/install.log 2>&1 || { cat .venv/install.log >&2; return 1; }; }
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
  quiet .venv/bin/python -m pip install --upgrade pip
fi
stamp=".venv/.tracebraid-installed${extras:+-$extras}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing tracebraid${extras:+[$extras]} into .venv ..." >&2
  quiet .venv/bin/python -m pip install -e ".${extras:+[$extras]}"
  echo "$want" > "$stamp"
fi
export PATH="$root/.venv/bin:$PATH"
