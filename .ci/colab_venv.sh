#!/usr/bin/env bash
# Build a virtualenv with Google Colab's pinned front-end stack (DESIGN.md section 1) and nbrepro
# installed editable into it, so the test suite can run against IPython 7.34 / ipykernel 6.17.
#
#   bash .ci/colab_venv.sh [VENV]        # VENV defaults to .venv-colab, relative to the repo root
#   VENV/bin/python -m pytest tests -q -p no:cacheprovider
#
# Idempotent: rerunning it on an existing venv only installs what is missing. No torch and no
# TensorFlow here (their tests skip): this venv tests the front-end stack with numpy + scikit-learn.
set -euo pipefail

cd "$(dirname "$0")/.."
venv=${1:-.venv-colab}

# Colab runs Python 3.12; take a 3.12 where there is one, else say what we fall back to.
python=""
for candidate in /root/.pyenv/versions/3.12*/bin/python3; do
    [ -x "$candidate" ] && python=$candidate  # any 3.12 will do
done
if [ -z "$python" ] && command -v python3.12 >/dev/null; then
    python=$(command -v python3.12)
fi
if [ -z "$python" ]; then
    python=$(command -v python3)
    echo "colab_venv: no Python 3.12 found; falling back to $python ($("$python" -V 2>&1))"
else
    echo "colab_venv: using $python ($("$python" -V 2>&1))"
fi

want=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ -x "$venv/bin/python" ] &&
    [ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$want" ]; then
    echo "colab_venv: $venv is not Python $want; rebuilding it"
    rm -rf "$venv"
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"

# Colab's pins go into a constraints file given to every pip call, so that nothing (a dependency,
# `pip install -e .`) can move them. Colab also ships the classic Notebook 6.5: ipywidgets 7's
# widgetsnbextension 3.6 needs some notebook, and Notebook 7 would drag in JupyterLab 4.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
cat >"$constraints" <<'PINS'
ipython==7.34.0
ipykernel==6.17.1
ipywidgets==7.7.1
traitlets==5.7.1
jupyter_client==7.4.9
anywidget==0.9.21
notebook==6.5.7
PINS

pip() {
    # This machine's pip config lists local indexes that lack most projects; pip warns about
    # each of them on every lookup. Drop only that noise; errors and pip's exit status remain.
    "$venv/bin/python" -m pip --disable-pip-version-check "$@" -c "$constraints" 2>&1 |
        { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

# nbclient 0.11 needs traitlets >= 5.13; 0.7 to 0.10 accept Colab's jupyter_client 7.4.9 and
# traitlets 5.7.1 (pip picks the newest 0.10; 0.7.4 and 0.8.0 pass the tests too).
pip install -q \
    -r <(cut -d= -f1 "$constraints") \
    numpy scikit-learn threadpoolctl pytest pytest-timeout \
    "nbclient>=0.7,<0.11" "nbformat>=5.7"
pip install -q -e .

"$venv/bin/python" -m pip check
"$venv/bin/python" - <<'PY'
import importlib.metadata as md

names = ["ipython", "ipykernel", "ipywidgets", "traitlets", "jupyter_client", "anywidget",
         "nbclient", "nbformat", "numpy", "scikit-learn", "nbrepro"]
print("colab_venv: " + ", ".join(f"{name} {md.version(name)}" for name in names))
PY
