#!/usr/bin/env bash
# Moved: zoo training runs are `medsr zoo train NAME...` (src/medsr/zoo/training.py): each run
# resumes from runs/zoo/NAME or the copy carried in zoo-runs/NAME, trains on the corpus, ships
# its best EMA weights into the zoo with their manifest entry and carries the run back.
#   scripts/train_zoo.sh NAME...           = medsr zoo train NAME...
#   scripts/train_zoo.sh --export NAME...  = medsr zoo export NAME...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ "${1:-}" == "--export" ]]; then
    shift
    exec medsr zoo export "$@"
fi
exec medsr zoo train --corpus "${CORPUS:-corpus}" --device "${DEVICE:-auto}" \
    ${STOP_AFTER:+--stop-after "$STOP_AFTER"} "$@"
