#!/bin/bash
# Inside the test VM: run $1, the command line of 'make vm CMD=...', as
# bash code.  A line that is not valid shell syntax (make vm CMD="echo
# it's ok") runs as a plain command and its arguments, split at blanks.
cmd=$1
if bash -n -c "$cmd" 2>/dev/null; then
	exec bash -c "$cmd"
fi
read -ra words <<< "$cmd"
exec "${words[@]}"
