# shellcheck shell=sh
# /etc/profile.d/cookbook.sh in the image: login shells (and the dev container's environment
# probe) activate the cookbook environment. The activation script is written for bash, so
# other shells that read /etc/profile (sh, dash) skip it.
if [ -n "${BASH_VERSION:-}" ] && [ -f /opt/cookbook/activate.sh ]; then
  # shellcheck source=/dev/null
  . /opt/cookbook/activate.sh
fi
