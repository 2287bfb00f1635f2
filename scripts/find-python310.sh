#!/usr/bin/env bash
# Prints a Python 3.10 interpreter for the Rasa venv (rasa 3.6 supports 3.8-3.10), or explains what to install.
set -euo pipefail
for candidate in "${RASA_PYTHON:-}" python3.10 "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/3.10.13/bin/python")" \
    $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python 2>/dev/null || true) /usr/bin/python3.10; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    command -v "$candidate"
    exit 0
  fi
done
echo "No Python 3.10 found for Rasa 3.6. Install one (e.g. 'pyenv install 3.10.13' or 'apt-get install python3.10 python3.10-venv') or set RASA_PYTHON=/path/to/python3.10." >&2
exit 1
