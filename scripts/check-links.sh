#!/bin/sh
# check-links.sh — every Markdown link in the docs that ship with aec points
# at a file or directory of the repository, and an anchor (#part) at a
# heading of that file. A link to an outside site, or one that leaves the
# repository (../shared/...), is an error too: a clone has only what is here.
#
#   sh scripts/check-links.sh                 # README.md, docs/*.md, bench/NOTES.md
#   sh scripts/check-links.sh docs/x.md ...   # those files
#
# Prints one line per broken link and exits 1 if there is any. PENDING lists
# pages another change is bringing (space-separated); links to them pass.
cd "$(dirname "$0")/.." || exit 2
[ $# -gt 0 ] || set -- README.md docs/*.md bench/NOTES.md
PENDING="${PENDING-}"

# GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
anchors() { grep '^#' "$1" | sed 's/^#* *//' | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9 _-]//g; s/ /-/g'; }

check() {  # FILE: one line per broken link in it
  f=$1 dir=$(dirname "$1")
  [ -f "$f" ] || { echo "$f: no such file"; return; }
  grep -n -o '](\([^)]*\))' "$f" | while IFS= read -r hit; do
    line=${hit%%:*} target=${hit#*](}
    target=${target%)}
    case "$target" in
      *://*|mailto:*) echo "$f:$line: link outside the repository: $target"; continue ;;
    esac
    path=${target%%#*} anchor=${target#"$path"}
    anchor=${anchor#\#}
    if [ -n "$path" ]; then resolved=$(realpath -m --relative-to=. "$dir/$path"); else resolved=$f; fi
    case "$resolved" in ..|../*) echo "$f:$line: link leaves the repository: $target"; continue ;; esac
    if [ ! -e "$resolved" ]; then
      case " $PENDING " in *" $resolved "*) ;; *) echo "$f:$line: no such file: $target" ;; esac
      continue
    fi
    if [ -n "$anchor" ] && [ -f "$resolved" ] && ! anchors "$resolved" | grep -qx -- "$anchor"; then
      echo "$f:$line: no heading #$anchor in $resolved"
    fi
  done
}

broken=$(for f in "$@"; do check "$f"; done)
[ -z "$broken" ] && exit 0
echo "$broken"
exit 1
