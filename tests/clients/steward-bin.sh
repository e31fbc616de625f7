# Sourced by the client scripts beside it, after they set $here (their own directory):
# sets $repo (the repository's root) and $bin, the steward binary to run (STEWARD_BIN,
# default target/debug/steward), made absolute so it holds after a cd.
repo="$(cd "$here/../../.." && pwd)"
bin="${STEWARD_BIN:-target/debug/steward}"
case "$bin" in
    /*) ;;
    *) if [[ -e "$PWD/$bin" ]]; then bin="$PWD/$bin"; else bin="$repo/$bin"; fi ;;
esac
