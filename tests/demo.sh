#!/bin/sh
echo "demo: not available yet: it needs agentd and migration (see README.md)" >&2
exit 1
