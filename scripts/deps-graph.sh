#!/bin/sh
# deps-graph.sh — the dependencies between the source folders of dsl/,
# compiler/ and runtime/, checked against their declared layers.
#
#   scripts/deps-graph.sh [BUILD]   prints the include graph by folder (from the
#       #include "..." lines), the include cycles between files, and the call
#       graph by folder with the call cycles between object files (from nm on
#       the objects in BUILD, default build/; `make deps-graph` builds them
#       first). Exits 1 when an include or a call goes up the layers, between
#       two folders of one layer or from one stack into the other, when a
#       folder that holds sources is in no layer, or when files form a cycle
#       (outside CYCLES_TOLERATED_IN); 2 when BUILD holds no objects.
#   scripts/deps-graph.sh --sees FOLDER   prints FOLDER and the folders it may
#       include from, its own first: the Makefile's include path for FOLDER.
#
# The layers, bottom first: one line a layer, and the folders of one line may
# not include each other. A folder may include from its own folder and from
# the layers below it in a stack that holds it. runtime/ itself is the
# runtime's public headers (aert.h, which generated programs include), at the
# bottom of both stacks.
#
# The compiler's stack: the front end and the public headers at the bottom,
# then the compiler's folders (the Makefile takes each folder's include path
# from this list), then compiler/ itself, which holds main.c: the pipeline.
COMPILER_BASE="dsl runtime"
COMPILER_LAYERS="
compiler/ir
compiler/writer
compiler/ops
compiler/front
compiler/passes
compiler/cgen
compiler/tools
compiler
"
# The runtime's stack (the Makefile takes each folder's include path from it).
RUNTIME_LAYERS="
runtime
runtime/core runtime/mpi
runtime/data runtime/ckpt runtime/draw runtime/analysis
runtime/cmd
runtime/cli
"
# Folders whose files may still call each other in a cycle: such a cycle is
# printed but does not fail the check. compiler/front/ is one: lowering is
# recursive descent (an expression's builtins and nets lower their arguments
# as expressions, the train block evaluates numbers), split into files by
# size; breaking it means moving the recursion into one file of its own.
# (A table of function pointers, as ops/table.c's rows, refers to functions
# without calling them: only references from code count as calls here, while
# the folder check above counts every reference.)
CYCLES_TOLERATED_IN="compiler/front"

set -eu
cd "$(dirname "$0")/.."

# "folder stack level" for every declared folder in every stack that holds it.
layers() {
  printf '%s\n%s\n' "$COMPILER_BASE" "$COMPILER_LAYERS" | awk 'NF { level++; for (i = 1; i <= NF; i++) print $i, "compiler", level }'
  printf '%s\n' "$RUNTIME_LAYERS" | awk 'NF { level++; for (i = 1; i <= NF; i++) print $i, "runtime", level }'
}

# What every check shares: reading the layers, and whether folder a may use folder b.
LAYERS='
function read_layers(file,   l, w) {
  while ((getline l < file) > 0) {
    split(l, w, " "); lev[w[2], w[1]] = w[3]; known[w[1]] = 1; stacks[w[2]] = 1
    if (!(w[1] in seen_)) { seen_[w[1]] = 1; order[++n_order] = w[1] }
  }
}
function allowed(a, b,   s) {
  if (a == b) return 1
  for (s in stacks) if (((s, a) in lev) && ((s, b) in lev) && lev[s, b] < lev[s, a]) return 1
  return 0
}
function one_layer(a, b,   s) {
  for (s in stacks) if (((s, a) in lev) && ((s, b) in lev) && lev[s, b] == lev[s, a]) return 1
  return 0
}'

if [ "${1:-}" = "--sees" ]; then
  [ $# -eq 2 ] || { echo "usage: $0 --sees FOLDER" >&2; exit 2; }
  layers | awk -v f="${2%/}" -v layers=/dev/stdin "$LAYERS"'
    BEGIN {
      read_layers(layers)
      if (!(f in known)) { print "deps-graph: " f " is in no layer of scripts/deps-graph.sh" > "/dev/stderr"; exit 1 }
      line = f
      for (i = 1; i <= n_order; i++) if (order[i] != f && allowed(f, order[i])) line = line " " order[i]
      print line
    }'
  exit
fi

BUILD=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
layers > "$tmp/layers"

# ------------------------------------------------------------ includes
find dsl compiler runtime -type f \( -name '*.c' -o -name '*.h' -o -name '*.re' -o -name '*.def' \) | sort > "$tmp/files"
# "file included-name" for every #include "..." line
while read -r f; do
  sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" | sed "s|^|$f |"
done < "$tmp/files" > "$tmp/includes"

# Resolves each name as the compiler does: beside the including file first,
# then in whichever folder holds a file of that name (a name two folders
# hold is ambiguous: headers are known by their file names alone).
awk -v files="$tmp/files" '
  function dirname(p) { return p ~ /\// ? substr(p, 1, match(p, /\/[^\/]*$/) - 1) : "." }
  function normal(p,   n, i, part, out, k) {
    n = split(p, part, "/"); k = 0
    for (i = 1; i <= n; i++) {
      if (part[i] == "." || part[i] == "") continue
      if (part[i] == ".." && k > 0 && out[k] != "..") { k--; continue }
      out[++k] = part[i]
    }
    p = ""; for (i = 1; i <= k; i++) p = p (i > 1 ? "/" : "") out[i]
    return p
  }
  BEGIN { while ((getline f < files) > 0) exists[f] = 1 }
  {
    file = $1; name = $2
    here = normal(dirname(file) "/" name)
    if (here in exists) { print file, here; next }
    found = ""; count = 0
    for (f in exists) if (f == name || substr(f, length(f) - length(name)) == "/" name) { found = f; count++ }
    if (count == 1) print file, found
    else if (count > 1) print file, "AMBIGUOUS:" name
    else print file, "UNRESOLVED:" name
  }' "$tmp/includes" > "$tmp/resolved"

status=0
# Strongly connected components of the graph in $1 ("from to" lines): one
# line per component of two or more nodes, its nodes sorted.
cycles() {
  awk '
    { if (!(($1, $2) in edge)) { edge[$1, $2] = 1; out[$1] = out[$1] " " $2 }; node[$1] = node[$2] = 1 }
    END {
      for (a in node) {  # reach[a, b]: a path runs from a to b
        delete seen; top = 0; stack[++top] = a
        while (top > 0) {
          v = stack[top--]; n = split(out[v], next_, " ")
          for (i = 1; i <= n; i++) if (!(next_[i] in seen)) { seen[next_[i]] = 1; reach[a, next_[i]] = 1; stack[++top] = next_[i] }
        }
      }
      for (a in node) {
        if (a in done) continue
        members = a; count = 1
        for (b in node) if (b != a && ((a, b) in reach) && ((b, a) in reach)) { members = members " " b; count++; done[b] = 1 }
        if (count > 1) print members
      }
    }' "$1" | while read -r line; do echo "$line" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $/\n/'; done | sort
}

echo "include graph by folder (FROM -> TO: files of FROM include headers in TO; how many includes):"
awk '
  function dirname(p) { return p ~ /\// ? substr(p, 1, match(p, /\/[^\/]*$/) - 1) : "." }
  $2 ~ /^(AMBIGUOUS|UNRESOLVED):/ { next }
  { a = dirname($1); b = dirname($2); if (a != b) n[a " -> " b]++ }
  END { for (e in n) print e, n[e] }' "$tmp/resolved" | sort > "$tmp/folder-includes"
awk -v layers="$tmp/layers" "$LAYERS"'
  BEGIN { read_layers(layers) }
  {
    verdict = ""
    if (!($1 in known)) verdict = "   <- " $1 " is in no layer"
    else if (!($3 in known)) verdict = "   <- " $3 " is in no layer"
    else if (!allowed($1, $3)) verdict = "   <- NOT ALLOWED: " (one_layer($1, $3) ? "within one layer" : "up the layers, or into another stack")
    printf "  %-18s -> %-18s %4d%s\n", $1, $3, $4, verdict
    if (verdict != "") bad = 1
  }
  END { exit bad }' "$tmp/folder-includes" || status=1
# Every folder that holds sources must be declared.
awk '{ sub(/\/[^\/]*$/, "", $1); print $1 }' "$tmp/files" | sort -u | while read -r d; do
  grep -q "^$d " "$tmp/layers" || echo "  $d holds sources but is in no layer"
done > "$tmp/undeclared"
if [ -s "$tmp/undeclared" ]; then cat "$tmp/undeclared"; status=1; fi
if grep -q ' \(AMBIGUOUS\|UNRESOLVED\):' "$tmp/resolved"; then
  echo "includes not resolved to one file (names are looked up beside the file, then by file name):"
  grep ' \(AMBIGUOUS\|UNRESOLVED\):' "$tmp/resolved" | sed 's/^/  /'
  grep -q ' AMBIGUOUS:' "$tmp/resolved" && status=1
fi

grep -v ' \(AMBIGUOUS\|UNRESOLVED\):' "$tmp/resolved" > "$tmp/file-includes" || true
cycles "$tmp/file-includes" > "$tmp/include-cycles"
if [ -s "$tmp/include-cycles" ]; then
  echo "include cycles between files:"; sed 's/^/  /' "$tmp/include-cycles"; status=1
else
  echo "include cycles between files: none"
fi

# --------------------------------------------------------------- calls
objects=$(find "$BUILD/dsl" "$BUILD/compiler" "$BUILD/runtime" -name '*.o' 2>/dev/null | sort || true)
if [ -z "$objects" ]; then
  echo "deps-graph: no objects under $BUILD/dsl, $BUILD/compiler, $BUILD/runtime: build them first (make all)" >&2
  exit 2
fi
# Only objects whose source still exists (a moved file leaves its old object behind).
for o in $objects; do
  rel=${o#"$BUILD"/}; rel=${rel%.o}
  if [ -f "$rel.c" ] || [ -f "$rel.re" ]; then
    nm -g --defined-only "$o" | awk -v o="$rel.o" 'NF == 3 { print "D", o, $3 }'
    nm -u "$o" | awk -v o="$rel.o" '{ print "U", o, $NF }'
    # symbols the object's code refers to (relocations in .text sections): its calls
    readelf -rW "$o" | awk -v o="$rel.o" '
      /^Relocation section/ { code = ($3 ~ /^.\.rela\.text/) ; next }
      code && NF >= 5 && $1 ~ /^[0-9a-f]+$/ { print "C", o, $5 }' | sort -u
  fi
done > "$tmp/symbols"
awk '$1 == "D" { def[$3] = $2 } $1 == "U" { use[++n] = $2 " " $3 }
     END { for (i = 1; i <= n; i++) { split(use[i], u, " "); if ((u[2] in def) && def[u[2]] != u[1]) print u[1], def[u[2]], u[2] } }' \
  "$tmp/symbols" | sort -u > "$tmp/calls"

echo "call graph by folder (from nm on $BUILD/: FROM -> TO: objects of FROM use symbols defined in TO; how many symbols):"
awk '
  function dirname(p) { return p ~ /\// ? substr(p, 1, match(p, /\/[^\/]*$/) - 1) : "." }
  { a = dirname($1); b = dirname($2); if (a != b) n[a " -> " b]++ }
  END { for (e in n) print e, n[e] }' "$tmp/calls" | sort > "$tmp/folder-calls"
awk -v layers="$tmp/layers" "$LAYERS"'
  BEGIN { read_layers(layers) }
  {
    verdict = allowed($1, $3) ? "" : "   <- NOT ALLOWED: " (one_layer($1, $3) ? "within one layer" : "up the layers, or into another stack")
    printf "  %-18s -> %-18s %4d%s\n", $1, $3, $4, verdict
    if (verdict != "") bad = 1
  }
  END { exit bad }' "$tmp/folder-calls" || status=1

awk '$1 == "D" { def[$3] = $2 } $1 == "C" { use[++n] = $2 " " $3 }
     END { for (i = 1; i <= n; i++) { split(use[i], u, " "); if ((u[2] in def) && def[u[2]] != u[1]) print u[1], def[u[2]], u[2] } }' \
  "$tmp/symbols" | sort -u > "$tmp/code-calls"
awk '{ print $1, $2 }' "$tmp/code-calls" | sort -u > "$tmp/object-calls"
cycles "$tmp/object-calls" > "$tmp/call-cycles"
if [ -s "$tmp/call-cycles" ]; then
  echo "call cycles between objects:"
  while read -r members; do
    tolerated=1
    for m in $members; do
      ok=0
      for t in $CYCLES_TOLERATED_IN; do case "$m" in "$t"/*) ok=1 ;; esac; done
      [ $ok = 1 ] || tolerated=0
    done
    if [ $tolerated = 1 ]; then
      echo "  tolerated (CYCLES_TOLERATED_IN): $members"
    else
      echo "  $members"
      # the calls between its files, with the symbols they use
      awk -v members=" $members " 'index(members, " " $1 " ") && index(members, " " $2 " ") { s[$1 " -> " $2] = s[$1 " -> " $2] " " $3 }
        END { for (e in s) print "    " e ":" s[e] }' "$tmp/code-calls" | sort
      status=1
    fi
  done < "$tmp/call-cycles"
else
  echo "call cycles between objects: none"
fi

# ------------------------------------------------------------ one writer
# Only compiler/writer/writer.c touches the generated C's output stream.
writers=$(grep -rn --include='*.c' -e '->out\b' compiler | grep -v '^compiler/writer/writer\.c:' || true)
if [ -n "$writers" ]; then
  echo "the generated C's stream (Emitter.out) used outside compiler/writer/writer.c:"; echo "$writers" | sed 's/^/  /'; status=1
else
  echo "one writer: only compiler/writer/writer.c writes generated C"
fi

if [ $status = 0 ]; then echo "deps-graph: ok"; else echo "deps-graph: FAILED"; fi
exit $status
