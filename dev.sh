#!/usr/bin/env bash
# Set up (or reuse) a local virtual environment and run a medsr job.
#   bash dev.sh demo   set up, then run the main job on the bundled sample data
#   bash dev.sh test   set up, then run the test suite, ruff and mypy
#   bash dev.sh setup  set up only
# The environment lives in .venv (override with MEDSR_VENV). torch is pinned so
# pip takes the CPU build rather than a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

TORCH_PIN="torch==2.13.0"
VENV="${MEDSR_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.medsr-installed"
    local want
    want="$(cat pyproject.toml dev.sh | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$TORCH_PIN"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$TORCH_PIN" -e ".[dev]"
        echo "$want" > "$stamp"
    fi
}

# Browser tests drive Debian's chromium through Playwright (never a downloaded browser).
ensure_chromium() {
    if [ -x /usr/bin/chromium ]; then
        return
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "dev.sh: installing Debian chromium for the browser tests" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
            || echo "dev.sh: could not install chromium; browser tests will be skipped" >&2
    else
        echo "dev.sh: /usr/bin/chromium missing (apt-get install chromium); browser tests will be skipped" >&2
    fi
}

# The DICOM conformance tests run dciodvfy (Debian dicom3tools) and dcm2niix on medsr's
# outputs; both are Debian packages.
ensure_dicom_tools() {
    local missing=()
    command -v dciodvfy >/dev/null 2>&1 || missing+=(dicom3tools)
    command -v dcm2niix >/dev/null 2>&1 || missing+=(dcm2niix)
    if [ "${#missing[@]}" -eq 0 ]; then
        return
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "dev.sh: installing Debian ${missing[*]} for the DICOM conformance tests" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null \
            || echo "dev.sh: could not install ${missing[*]}; DICOM conformance tests will be skipped" >&2
    else
        echo "dev.sh: ${missing[*]} missing (apt-get install ${missing[*]}); DICOM conformance tests will be skipped" >&2
    fi
}

cmd="${1:-demo}"
shift || true
case "$cmd" in
    setup)
        setup
        ;;
    demo)
        setup
        "$VENV/bin/medsr" demo "$@"
        ;;
    test)
        setup
        ensure_chromium
        ensure_dicom_tools
        export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
        "$VENV/bin/python" -m pytest "$@"
        "$VENV/bin/ruff" check src tests benchmarks scripts
        "$VENV/bin/ruff" format --check src tests benchmarks scripts
        "$VENV/bin/mypy"
        ;;
    *)
        echo "usage: bash dev.sh [demo|test|setup] [args...]" >&2
        exit 2
        ;;
esac
