#!/bin/sh
# Writes a manual page from the --help texts it documents, so that the page
# cannot drift from the program (the Makefile runs it at build time; `make
# install` installs what it wrote):
#   man-page.sh aec AEC VERSION       aec(1), from `AEC --help`
#   man-page.sh program PROG VERSION  aec-model(1), the generated program's
#                                     commands, from `PROG --help` and
#                                     `PROG COMMAND --help` for each command;
#                                     PROG should be named MODEL, as the page
#                                     calls the program.
# The page goes to standard output; the script fails when a help text does.
set -eu
mode=$1 prog=$2 version=$3

# help text -> roff: option lines ("  -x, --long ARG   what it does", and the
# lines indented under them) become .TP entries, with the flags in bold and
# their arguments in italics; other lines are escaped running text. The
# description starts at the first run of two spaces after the flags (or at
# column 26, where a generated program's %-22s field fills up).
to_roff='
function esc(s) {
  gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s)
  if (s ~ /^[.\047]/) s = "\\&" s
  return s
}
function flags(s,    n, i, w, t, out, comma) {
  n = split(s, w, " ")
  out = ""
  for (i = 1; i <= n; i++) {
    t = w[i]; comma = ""
    if (t ~ /,$/) { comma = ","; t = substr(t, 1, length(t) - 1) }
    out = out (i > 1 ? " " : "") (t ~ /^-/ ? "\\fB" esc(t) "\\fR" : "\\fI" esc(t) "\\fR") comma
  }
  return out
}
/^  -/ {
  rest = substr($0, 3)
  k = index(rest, "  ")
  if (k == 0 && length(rest) > 23) k = 23
  if (k == 0) { print ".TP"; print flags(rest); next }
  f = substr(rest, 1, k - 1); sub(/ +$/, "", f)
  d = substr(rest, k); sub(/^ +/, "", d)
  print ".TP"; print flags(f); print esc(d); next
}
/^ +[^ ]/ { s = $0; sub(/^ +/, "", s); print esc(s); next }
/^$/ { print ".PP"; next }
{ print esc($0) }
'

help_of() {  # the help text of "$@", or a failure that names the command
  text=$("$@") || { echo "man-page.sh: '$*' failed" >&2; exit 1; }
  [ -n "$text" ] || { echo "man-page.sh: '$*' printed nothing" >&2; exit 1; }
  printf '%s\n' "$text"
}

case $mode in
aec)
  help=$(help_of "$prog" --help)
  cat <<EOF
.TH AEC 1 "" "aec $version" "User Commands"
.nh
.ad l
.SH NAME
aec \\- compile an autoencoder description into a C program that trains and applies it
.SH SYNOPSIS
EOF
  printf '%s\n' "$help" | sed -n '1s/^usage: aec //p' | awk "$to_roff" | sed 's/^/.B aec\n/'
  echo ".SH DESCRIPTION"
  # The sentence after the usage line, the options up to "Environment:", then that paragraph.
  printf '%s\n' "$help" | sed -n '3p' | awk "$to_roff"
  echo ".SH OPTIONS"
  printf '%s\n' "$help" | sed -n '4,/^Environment:/p' | grep -v '^Environment:' | awk "$to_roff"
  echo ".SH ENVIRONMENT"
  printf '%s\n' "$help" | sed -n '/^Environment:/,$p' | sed '1s/^Environment: //' | awk "$to_roff"
  cat <<'EOF'
.SH FILES
aec finds the runtime next to itself (the build folder:
.IR build/libaert.a ,
.IR build/include/ ),
else, installed as
.IR PREFIX/bin/aec ,
in
.I PREFIX/lib/libaert.a
(and
.IR libaert_f64.a ,
.IR libaert_mpi.a )
and
.IR PREFIX/include/aert/ .
.B pkg\-config \-\-cflags \-\-libs aert
gives the flags to build a generated
.I MODEL.c
by hand.
Examples are in
.IR PREFIX/share/aec/examples/ .
.SH EXIT STATUS
0 on success, 1 when the model has errors (each is reported with its file,
line and column) or the C compiler fails, 2 on a bad command line.
.SH EXAMPLE
.nf
aec /usr/share/aec/examples/simple.ae \-o simple
\&./simple train \-\-epochs 1
\&./simple reconstruct \-o reconstruction.png
.fi
.SH SEE ALSO
.BR aec\-model (1),
.BR pkg\-config (1)
EOF
  ;;
program)
  help=$(help_of "$prog" --help)
  cat <<EOF
.TH AEC\\-MODEL 1 "" "aec $version" "User Commands"
.nh
.ad l
.SH NAME
aec\\-model \\- the commands of a program that aec compiles from a model
.SH SYNOPSIS
.B MODEL
.I COMMAND
.RI [ OPTIONS ]
.SH DESCRIPTION
.B aec MODEL.ae \\-o MODEL
writes one C program, MODEL, that trains and applies the autoencoder described in
.IR MODEL.ae .
Every such program has the commands below; each command's options override the
model file's training settings where they overlap.
.B MODEL \\-\\-help
lists the commands and
.B MODEL COMMAND \\-\\-help
a command's options, as this page does.
A command that fails names the file at fault and exits non\\-zero.
.SH COMMANDS
EOF
  # The command list: from "commands:" to the blank line after it.
  printf '%s\n' "$help" | sed -n '/^commands:$/,/^$/p' | sed '1d;/^$/d' | while read -r name what; do
    chelp=$(help_of "$prog" "$name" --help)
    printf '.SS %s\n' "$name" | awk '{ gsub(/-/, "\\-"); print }'
    printf '%s\n' "$chelp" | sed -n '1s/^usage: MODEL //p' | awk "$to_roff" | sed 's/^/.B MODEL\n/'
    printf '%s\n' "$chelp" | sed '1d;/^options:$/d' | awk "$to_roff"
  done
  cat <<'EOF'
.SH SEE ALSO
.BR aec (1)
EOF
  ;;
*)
  echo "usage: man-page.sh aec|program PROGRAM VERSION" >&2
  exit 2
  ;;
esac
