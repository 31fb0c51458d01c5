#!/bin/bash
# Entrypoint of the cookbook image: activate the pixi environment, then run the command.
#
# /opt/cookbook/activate.sh is the output of `pixi shell-hook`, written at build time
# (see container/Dockerfile), so the runtime image needs no pixi binary. `exec` replaces this
# shell, so the command (JupyterLab by default) is PID 1 and receives `docker stop`'s SIGTERM.
# The hook runs the environment's activation scripts, which may read unset variables, so
# this script does not use `set -u`.

# shellcheck source=/dev/null
source /opt/cookbook/activate.sh

exec "$@"
