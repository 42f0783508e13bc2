#!/bin/sh
# Creates deploy/mosquitto/passwd from the passwords in .env, using the
# mosquitto image's own mosquitto_passwd (nothing to install).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ -f "$root/.env" ] || { echo "copy deploy/env.example to .env first" >&2; exit 1; }
# shellcheck disable=SC1091
. "$root/.env"
: > "$here/passwd"
for pair in "fordpass:$FORDPASS_MQTT_PASSWORD" "homeassistant:$HOMEASSISTANT_MQTT_PASSWORD" \
            "nodered:$NODERED_MQTT_PASSWORD" "healthcheck:$HEALTHCHECK_MQTT_PASSWORD" \
            "evcc:${EVCC_MQTT_PASSWORD:-}"; do
  [ -n "${pair#*:}" ] || continue # evcc only when .env gives it a password
  docker run --rm -v "$here:/work" eclipse-mosquitto:2 \
    mosquitto_passwd -b /work/passwd "${pair%%:*}" "${pair#*:}"
done
chmod 0600 "$here/passwd"
echo "wrote $here/passwd"
