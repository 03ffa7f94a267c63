# Shared settings for the project scripts (sourced, not run).
# Heavy, reusable artefacts live outside the clone so CI runs and fresh clones share them.
export FRONTDESK_CACHE="${FRONTDESK_CACHE:-$HOME/.cache/frontdesk}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FRONTDESK_CACHE/target}"
export FRONTDESK_MODELS="${FRONTDESK_MODELS:-$FRONTDESK_CACHE/models}"
# Where the real data lives (read in place, never copied into the repository).
FRONTDESK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FRONTDESK_ROOT
export FRONTDESK_SHARED="${FRONTDESK_SHARED:-$(cd "$FRONTDESK_ROOT/.." && pwd)/shared}"
