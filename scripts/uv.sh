# Sourced by the other scripts: puts a pinned uv on hand (`$UV`) without touching the system Python.
# uv installs exactly what uv.lock says (`uv sync --frozen`); refresh the lock with ./scripts/lock.sh.
UV_VERSION=0.13.9
export UV_PYTHON_DOWNLOADS=never          # use the machine's Python (3.11+), never download one
export UV_PYTHON="${PYTHON:-python3}"
export UV_LINK_MODE="${UV_LINK_MODE:-copy}"
_uv_home=".tools/uv-$UV_VERSION"
UV="$PWD/$_uv_home/bin/uv"
if [ ! -x "$UV" ] || ! "$UV" --version 2>/dev/null | grep -q " $UV_VERSION"; then
  if command -v uv >/dev/null 2>&1 && uv --version | grep -q " $UV_VERSION"; then
    UV=$(command -v uv)
  else
    echo "setting up uv $UV_VERSION in $_uv_home" >&2
    rm -rf "$_uv_home"
    "$UV_PYTHON" -m venv "$_uv_home"
    "$_uv_home/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
  fi
fi
export UV
