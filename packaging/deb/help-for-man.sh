#!/bin/sh
# help2man's program for the man pages of the Debian package (debian/rules):
#   help2man 'sh packaging/deb/help-for-man.sh BINARY' ...
# prints BINARY's --version unchanged and its --help with the continuation lines of a
# multi-line usage joined to the line they continue (walvault's verbs: "  restore --pgdata DIR
# [...]" goes on over lines indented 4 or more and starting with '[' or '--'), which help2man
# would otherwise read as new paragraphs; and an option whose description follows its
# argument after a single space ("  --connect-timeout SECONDS how long ...") gets two, which
# is how help2man tells the option from its description. Every other line is passed through.
set -eu
binary=$1
shift
if [ "${1:-}" = "--version" ]; then exec "$binary" --version; fi
"$binary" --help | awk '
  /^    +(\[|--)/ && held != "" && held ~ /^  [a-z]/ { sub(/^ +/, " "); held = held $0; next }
  match($0, /^  --[a-z-]+ [A-Z][A-Z|]* [a-z]/) { $0 = substr($0, 1, RLENGTH - 2) "  " substr($0, RLENGTH) }
  { if (have) print held; held = $0; have = 1 }
  END { if (have) print held }'
