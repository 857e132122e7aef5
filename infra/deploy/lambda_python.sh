#!/bin/sh
# Prints the path of a working python<VERSION>: the one given, else the first on PATH, else the
# newest under pyenv's versions. Fails with what to do when there is none.
#   infra/deploy/lambda_python.sh 3.12 [/path/to/python]
set -eu
version=$1
given=${2:-}

is_version() {
    "$1" -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, sys.argv[1].split("."))))' \
        "$version" 2>/dev/null
}

if [ -n "$given" ]; then
    if is_version "$given"; then command -v "$given"; exit 0; fi
    echo "PYTHON=$given is not a working Python $version (the Lambda runtime's version)" >&2
    exit 1
fi
pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
# A pyenv shim for python$version exists even when that version is not selected: try each.
for candidate in "python$version" $(ls -d "$pyenv_root/versions/$version".*/bin/"python$version" 2>/dev/null | sort -r -V); do
    if is_version "$candidate"; then command -v "$candidate"; exit 0; fi
done
echo "no working python$version (the Lambda runtime's version): put one on PATH," \
    "install it with 'pyenv install $version', or pass PYTHON=/path/to/python$version" >&2
exit 1
