#!/bin/sh
# Apache Superset for the BI tool's end-to-end test (make test-superset), in its own venv
# (.venv-superset): it pins SQLAlchemy 1.4 and older pandas, which the project does not use.
# Versions are pinned in tests/superset/requirements.txt (apache-superset 6.1.0 with the
# packages its metadata misses: rich, cachetools; flask-caching 2.3.1, as Superset's own
# repository pins it). Does nothing when that venv already has them.
set -eu
PYTHON=${PYTHON:-python3}
VENV=.venv-superset
REQUIREMENTS=tests/superset/requirements.txt
STAMP=$VENV/.installed
if [ -f "$STAMP" ] && [ "$STAMP" -nt "$REQUIREMENTS" ]; then
    exit 0
fi
$PYTHON -m venv $VENV
if $VENV/bin/python -m pip install --quiet uv; then
    $VENV/bin/uv pip install --quiet --python $VENV/bin/python -r $REQUIREMENTS
else
    $VENV/bin/python -m pip install --quiet -r $REQUIREMENTS
fi
touch "$STAMP"
echo "installed $($VENV/bin/python -c 'import importlib.metadata as m; print("apache-superset", m.version("apache-superset"))')"
