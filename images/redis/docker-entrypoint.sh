#!/bin/sh
# Entrypoint of ecommerce-test/redis:7, following the official redis image's docker-entrypoint.sh.
set -eu

# `docker run image --maxmemory 128mb` or `docker run image /path/redis.conf ...`
# means `redis-server ...`.
first="${1:-}"
if [ "${first#-}" != "$first" ] || [ "${first%.conf}" != "$first" ]; then
	set -- redis-server "$@"
fi

# Started as root: hand /data (WORKDIR) to redis and run this script again as redis.
# Started as `--user redis` (all capabilities dropped): nothing to chown, go on.
if [ "${1:-}" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec gosu redis "$0" "$@"
fi

if [ "${1:-}" = 'redis-server' ]; then
	# The official image is built with protected-mode off by default; Debian's binary is not.
	# Pass `--protected-mode no` unless the config file (first argument) or an option sets it.
	shift
	conf=''
	if [ $# -gt 0 ] && { [ "$1" = '-' ] || [ "${1#-}" = "$1" ]; }; then
		conf="$1"
		shift
	fi
	set_by_user=''
	case " $* " in
		*' --protected-mode '*) set_by_user=yes ;;
	esac
	case "${1:-}" in
		-v | --version | -h | --help | --test-memory | --check-system) set_by_user=yes ;;
	esac
	if [ -n "$conf" ] && [ -r "$conf" ] && grep -qiE '^[[:space:]]*protected-mode[[:space:]]' "$conf"; then
		set_by_user=yes
	fi
	if [ -z "$set_by_user" ]; then
		set -- --protected-mode no "$@"
	fi
	if [ -n "$conf" ]; then
		set -- "$conf" "$@"
	fi
	set -- redis-server "$@"

	# An appropriate umask, unless one was chosen already (official image).
	if [ "$(umask)" = '0022' ]; then
		umask 0077
	fi
fi

exec "$@"
