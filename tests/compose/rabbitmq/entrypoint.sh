#!/usr/bin/env bash
# Entry point of the rabbitmq stand-in: turns the official image's
# RABBITMQ_DEFAULT_* variables into configuration, then runs the broker
# (Debian's wrapper drops to user rabbitmq).
set -euo pipefail

conf=/etc/rabbitmq/conf.d/15-default-user.conf
: >"$conf"
[[ -n "${RABBITMQ_DEFAULT_USER:-}" ]] && echo "default_user = $RABBITMQ_DEFAULT_USER" >>"$conf"
[[ -n "${RABBITMQ_DEFAULT_PASS:-}" ]] && echo "default_pass = $RABBITMQ_DEFAULT_PASS" >>"$conf"
[[ -n "${RABBITMQ_DEFAULT_VHOST:-}" ]] && echo "default_vhost = $RABBITMQ_DEFAULT_VHOST" >>"$conf"
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq

exec "$@"
