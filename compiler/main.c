// main.c — the aec driver: reads a .ae file, lowers it to the graph, adds
// the backward pass, and writes C (-o model.c) or also compiles it with the
// runtime into a program (-o model).
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools.h"

extern char **environ;

#ifndef AEC_RUNTIME_LIBS
#define AEC_RUNTIME_LIBS "-lcairo -lz"
#endif

enum { MAX_DEFINES = 64 };

typedef struct Options {
  const char *input;
  const char *output;
  Define defines[MAX_DEFINES];
  int n_defines;
  DType dtype;
  int opt_level;
  bool summary, dump_ir, stats, verbose;
  bool keep_c;  // --keep-c (gcc's -save-temps): -o PROGRAM also leaves PROGRAM.c
  bool mpi;  // --mpi: compiled with mpicc against libaert_mpi.a
  bool lib;  // --lib: NAME.h and NAME.c, a library for inference (cgen/library.c), no main
  const char *weights;  // --lib --weights FILE: the checkpoint FILE's bytes go into NAME.c
  bool dot, list_ops, line_directives;  // inspect.c
} Options;

static void usage(FILE *out) {
  fprintf(out,
          "usage: aec MODEL.ae [-o OUT] [options]\n"
          "\n"
          "Compiles an autoencoder description into one C program that trains and applies it.\n"
          "  -o OUT.c         write the generated C\n"
          "  -o OUT           write the C and compile it with the runtime into the program OUT\n"
          "                   (default: MODEL.c in the current directory)\n"
          "  --lib            write OUT.h and OUT.c (-o OUT, default MODEL): the model as a C library\n"
          "                   for inference from a checkpoint (open, encode, decode, reconstruct,\n"
          "                   score, close), no main; see docs/embedding.md\n"
          "  --weights CKPT   with --lib: put the checkpoint CKPT in OUT.c as a constant array\n"
          "                   (NAME_open_embedded, for targets with no file system)\n"
          "  -D NAME=VALUE    override `param NAME` of the file\n"
          "  --dtype f32|f64  element type of the generated code (f64 for gradient checks)\n"
          "  -O0              one plain kernel per node, no fusion, no buffer reuse: the reference\n"
          "  -O2              fused, shape-specialized matrix kernels and a planned arena (default)\n"
          "  --summary        print the layers, shapes and parameter counts; write nothing\n"
          "  --dump-ir        print the graph after each pass, then each generated function's\n"
          "                   schedule, fusion groups (kernels) and arena offsets; write nothing\n"
          "  --dot            print the training steps' graphs as Graphviz (render: dot -Tpng):\n"
          "                   forward nodes blue, backward orange, one box per kernel; write nothing\n"
          "  --line           put #line directives in the C so compiler messages and debuggers\n"
          "                   point each kernel at its .ae line\n"
          "  --list-ops       print every operation of the language with its arguments\n"
          "  --stats          print kernels before/after fusion, arena bytes before/after planning\n"
          "                   and FLOPs per sample of each generated function; write nothing\n"
          "  --mpi            build a program that also trains data-parallel under mpirun\n"
          "                   (compiled with mpicc, default CC then; needs Open MPI and libaert_mpi.a)\n"
          "  --keep-c         with -o PROGRAM, also keep the generated C as PROGRAM.c (-save-temps too);\n"
          "                   aec compiled it in two halves at once (cc -DAEC_PART=1 -c, -DAEC_PART=2 -c),\n"
          "                   and it also compiles whole, as its first lines say\n"
          "  -v               print the C compiler command\n"
          "  --version, --help\n"
          "Environment: CC (the C compiler, default cc), AEC_CFLAGS (default -O3 -march=native),\n"
          "AEC_JOBS=1 (compile the C whole, in one command, instead of two halves at once),\n"
          "AEC_RUNTIME_DIR (where libaert.a and include/aert.h, aert_kernels.h are; default: next to aec,\n"
          "else PREFIX/lib and PREFIX/include/aert for aec installed as PREFIX/bin/aec).\n");
}

static bool parse_define(const char *text, Define *out) {
  const char *eq = strchr(text, '=');
  if (!eq || eq == text) return false;
  char *end;
  errno = 0;
  double v = strtod(eq + 1, &end);
  if (errno || end == eq + 1 || *end || !isfinite(v)) return false;
  if (!(isalpha((unsigned char)text[0]) || text[0] == '_')) return false;
  for (const char *c = text; c < eq; c++)
    if (!(isalnum((unsigned char)*c) || *c == '_')) return false;
  out->name = strndup(text, (size_t)(eq - text));
  out->value = v;
  return true;
}

static int parse_options(int argc, char **argv, Options *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--version") == 0) {
      printf("aec %s\n", AEC_VERSION);
      exit(0);
    } else if (strcmp(a, "-o") == 0) {
      if (++i >= argc) return diag_error_plain("-o needs a file name"), 2;
      o->output = argv[i];
    } else if (strncmp(a, "-D", 2) == 0) {
      const char *def = a[2] ? a + 2 : (++i < argc ? argv[i] : NULL);
      if (!def) return diag_error_plain("-D needs NAME=VALUE"), 2;
      if (o->n_defines == MAX_DEFINES) return diag_error_plain("too many -D options"), 2;
      if (!parse_define(def, &o->defines[o->n_defines]))
        return diag_error_plain("-D %s: expected NAME=NUMBER (a .ae name, a finite number), like -D code=16", def), 2;
      o->n_defines++;
    } else if (strcmp(a, "--dtype") == 0 || strncmp(a, "--dtype=", 8) == 0) {
      const char *v = a[7] == '=' ? a + 8 : (++i < argc ? argv[i] : "");
      if (strcmp(v, "f32") == 0) o->dtype = DTYPE_F32;
      else if (strcmp(v, "f64") == 0) o->dtype = DTYPE_F64;
      else return diag_error_plain("--dtype takes f32 or f64, not '%s'", v), 2;
    } else if (strcmp(a, "-O0") == 0 || strcmp(a, "-O1") == 0 || strcmp(a, "-O2") == 0 || strcmp(a, "-O3") == 0) {
      o->opt_level = a[2] - '0';
    } else if (strcmp(a, "--stats") == 0) {
      o->stats = true;
    } else if (strcmp(a, "--summary") == 0) {
      o->summary = true;
    } else if (strcmp(a, "--dump-ir") == 0) {
      o->dump_ir = true;
    } else if (strcmp(a, "--dot") == 0) {
      o->dot = true;
    } else if (strcmp(a, "--line") == 0) {
      o->line_directives = true;
    } else if (strcmp(a, "--list-ops") == 0) {
      list_ops(stdout);
      exit(0);
    } else if (strcmp(a, "--keep-c") == 0 || strcmp(a, "-save-temps") == 0) {
      o->keep_c = true;
    } else if (strcmp(a, "-v") == 0) {
      o->verbose = true;
    } else if (strcmp(a, "--mpi") == 0) {
      o->mpi = true;
    } else if (strcmp(a, "--lib") == 0) {
      o->lib = true;
    } else if (strcmp(a, "--weights") == 0) {
      if (++i >= argc) return diag_error_plain("--weights needs a checkpoint file (with --lib)"), 2;
      o->weights = argv[i];
    } else if (a[0] == '-' && a[1]) {
      return diag_error_plain("unknown option '%s' (see aec --help)", a), 2;
    } else if (o->input) {
      return diag_error_plain("one .ae file at a time: '%s' and '%s'", o->input, a), 2;
    } else {
      o->input = a;
    }
  }
  if (!o->input) {
    usage(stderr);
    return 2;
  }
  if (o->weights && !o->lib)
    return diag_error_plain("--weights %s puts a checkpoint into the library --lib writes: add --lib", o->weights), 2;
  if (o->lib && o->mpi) return diag_error_plain("--lib writes a library for inference, and --mpi is for training: give one"), 2;
  return 0;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static char *model_name_of(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char *name = strdup(base);
  if (ends_with(name, ".ae")) name[strlen(name) - 3] = '\0';
  for (char *c = name; *c; c++)
    if (!(*c == '-' || *c == '_' || *c == '.' || (*c >= '0' && *c <= '9') || ((*c | 32) >= 'a' && (*c | 32) <= 'z')))
      *c = '_';
  return name;
}

static void hash_source(const Source *src, const Options *o, char *out, size_t size) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a, 64 bits
  for (size_t i = 0; i < src->length; i++) h = (h ^ (unsigned char)src->text[i]) * 1099511628211ull;
  h = (h ^ (uint64_t)o->dtype) * 1099511628211ull;
  for (int i = 0; i < o->n_defines; i++) {
    for (const char *c = o->defines[i].name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    uint64_t bits;
    memcpy(&bits, &o->defines[i].value, sizeof bits);
    h = (h ^ bits) * 1099511628211ull;
  }
  snprintf(out, size, "%016llx", (unsigned long long)h);
}

// The header's "Options:" line: the options that shape the generated code,
// spelled the same way wherever aec runs (argv would name paths and binaries).
static char *canonical_options(const Options *o) {
  char *text = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&text, &size);
  fprintf(out, "-O%d --dtype %s", o->opt_level, o->dtype == DTYPE_F64 ? "f64" : "f32");
  for (int i = 0; i < o->n_defines; i++) fprintf(out, " -D %s=%.17g", o->defines[i].name, o->defines[i].value);
  if (o->line_directives) fprintf(out, " --line");
  if (o->lib) fprintf(out, " --lib");
  fclose(out);
  return text;
}

// Where the runtime is: the folder of libaert.a (and its _f64, _mpi kin) and
// the folder of aert.h, aert_kernels.h and aert_optimizers.def.
typedef struct RuntimePaths {
  char *lib_dir, *include_dir;
} RuntimePaths;

static bool file_exists(const char *dir, const char *name) {
  char *path = NULL;
  struct stat st;
  bool found = asprintf(&path, "%s/%s", dir, name) >= 0 && stat(path, &st) == 0;
  free(path);
  return found;
}

// $AEC_RUNTIME_DIR (libaert.a there, the headers in its include/); else next
// to aec itself, as in the build folder (build/aec, build/libaert.a,
// build/include/); else the install layout around aec's folder
// (PREFIX/bin/aec, PREFIX/lib/libaert.a, PREFIX/include/aert/), which is also
// what the error names when neither holds the library.
static RuntimePaths runtime_paths(const char *library) {
  RuntimePaths p = {NULL, NULL};
  const char *env = getenv("AEC_RUNTIME_DIR");
  char exe[PATH_MAX] = ".";
  ssize_t n = env && *env ? 0 : readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
  }
  const char *dir = env && *env ? env : exe;
  if ((env && *env) || file_exists(dir, library)) {
    if (asprintf(&p.lib_dir, "%s", dir) < 0 || asprintf(&p.include_dir, "%s/include", dir) < 0) exit(1);
  } else {
    // PREFIX is aec's folder less its last part ("/usr/bin" -> "/usr",
    // "/bin" -> ""), spelled without "..", since aec -v prints it.
    char *up = strrchr(exe, '/');
    const char *prefix = up ? exe : "..";
    int length = up ? (int)(up - exe) : 2;
    if (asprintf(&p.lib_dir, "%.*s/lib", length, prefix) < 0 ||
        asprintf(&p.include_dir, "%.*s/include/aert", length, prefix) < 0)
      exit(1);
  }
  return p;
}

// Writes the program (aec --line: through a buffer, since the directives
// pointing back at the .c file need its real line numbers).
static bool write_program(FILE *out, const ProgramPlan *plan, const EmitOptions *eo) {
  if (!eo->line_directives) return emit_program(out, plan, eo);
  char *whole = NULL;
  size_t size = 0;
  FILE *buffer = open_memstream(&whole, &size);
  if (!buffer) return false;
  bool ok = emit_program(buffer, plan, eo);
  ok &= fclose(buffer) == 0;
  ok = ok && write_with_line_directives(out, whole, size, eo->c_name ? eo->c_name : "model.c");
  free(whole);
  return ok;
}

// ---------------------------------------------- output files, as the runtime
// writes them (runtime/core/output.c): never through a link planted at a
// predictable name, never over a directory, device or FIFO.
// The file writing `path` replaces: path (absent or a regular file) or the
// regular file a symbolic link there names; NULL after a message otherwise.
static char *output_target(const char *path) {
  struct stat st, to;
  if (lstat(path, &st) != 0) return errno == ENOENT ? strdup(path) : (diag_error_plain("cannot write '%s': %s", path, strerror(errno)), NULL);
  bool link = S_ISLNK(st.st_mode);
  if (link && stat(path, &to) != 0) {
    diag_error_plain("cannot write '%s': it is a symbolic link to a file that does not exist", path);
    return NULL;
  }
  if (!S_ISREG(link ? to.st_mode : st.st_mode)) {
    diag_error_plain("cannot write '%s': it is %s, and only a regular file is replaced", path,
                     link ? "a symbolic link to something other than a regular file" : "not a regular file");
    return NULL;
  }
  return link ? realpath(path, NULL) : strdup(path);
}

// A new file DIR/.NAME.aec-tmp-PID-XXXXXX<suffix> beside target, made with
// O_EXCL; its name, or NULL after a message.
static char *create_temporary(const char *target, const char *suffix) {
  const char *slash = strrchr(target, '/'), *name = slash ? slash + 1 : target;
  int dir_length = slash ? (int)(slash - target) + 1 : 0;
  char *tmp = NULL;
  if (asprintf(&tmp, "%.*s.%.100s.aec-tmp-%d-XXXXXX%s", dir_length, target, name, (int)getpid(), suffix) < 0) return NULL;
  int fd = mkostemps(tmp, (int)strlen(suffix), O_CLOEXEC);
  if (fd < 0) {
    diag_error_plain("cannot write '%s': %s", target, strerror(errno));
    free(tmp);
    return NULL;
  }
  mode_t mask = umask(0);
  umask(mask);
  if (fchmod(fd, 0666 & ~mask) != 0 || close(fd) != 0) {
    diag_error_plain("cannot write '%s': %s", target, strerror(errno));
    unlink(tmp), free(tmp);
    return NULL;
  }
  return tmp;
}

// The C into `tmp` (a file create_temporary made).
static bool write_c_file(const char *tmp, const char *shown, const ProgramPlan *plan, const EmitOptions *eo) {
  FILE *out = fopen(tmp, "w");
  if (!out) {
    diag_error_plain("cannot write '%s': %s", shown, strerror(errno));
    return false;
  }
  int errors_before = diag_error_count();
  bool ok = write_program(out, plan, eo);
  ok &= fflush(out) == 0 && fsync(fileno(out)) == 0;
  ok &= fclose(out) == 0;
  if (!ok && diag_error_count() == errors_before)  // else emit_program said why (a model too large for memory)
    diag_error_plain("cannot write '%s': %s", shown, strerror(errno));
  return ok;
}

// Splits a string of flags on spaces into argv entries.
static int split_flags(const char *flags, char **argv, int max) {
  int n = 0;
  char *copy = strdup(flags), *save = NULL;
  for (char *tok = strtok_r(copy, " \t", &save); tok && n < max; tok = strtok_r(NULL, " \t", &save)) argv[n++] = strdup(tok);
  free(copy);
  return n;
}

// Starts argv (printed first with -v); its process, or -1 after a message.
static pid_t start_command(char **argv, bool verbose) {
  if (verbose) {
    for (int i = 0; argv[i]; i++) fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
    fputc('\n', stderr);
  }
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
  if (rc != 0) {
    diag_error_plain("cannot run the C compiler '%s': %s", argv[0], strerror(rc));
    return -1;
  }
  return pid;
}

static bool command_succeeded(pid_t pid) {
  int status = 0;
  return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// The generated C into the program `output`. The C is two halves under
// AEC_PART (cgen/kernels.c): both compile at once, one a core, then link;
// GCC's time on a model is most of aec's, and this machine's kind has 2 cores
// or more. AEC_JOBS=1 compiles the file whole instead, in one command.
static int compile_program(const char *c_path, const char *output, const char *target, DType dtype, bool verbose, bool mpi) {
  const char *library = dtype == DTYPE_F64 ? "libaert_f64.a" : "libaert.a";
  RuntimePaths dir = runtime_paths(library);
  char *lib = NULL, *mpi_lib = NULL, *include = NULL;
  if (asprintf(&lib, "%s/%s", dir.lib_dir, library) < 0 ||
      asprintf(&mpi_lib, "%s/%s", dir.lib_dir, dtype == DTYPE_F64 ? "libaert_mpi_f64.a" : "libaert_mpi.a") < 0 ||
      asprintf(&include, "-I%s", dir.include_dir) < 0)
    return 1;
  struct stat st;
  if (stat(lib, &st) != 0) {
    diag_error_plain("cannot find the runtime library '%s' (nor %s next to aec); build it with `make`, install it with "
                     "`make install`, or set AEC_RUNTIME_DIR to the folder that holds it",
                     lib, library);
    return 1;
  }
  // --mpi: mpicc knows where Open MPI's headers and libraries are (CC still wins).
  const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : mpi ? "mpicc" : "cc";
  const char *cflags = getenv("AEC_CFLAGS") ? getenv("AEC_CFLAGS") : "-O3 -march=native";
  const bool whole = getenv("AEC_JOBS") && strcmp(getenv("AEC_JOBS"), "1") == 0;
  // The halves' objects, beside the program (`target`, its final name).
  char *objects[2] = {NULL, NULL};
  for (int h = 0; h < 2 && !whole; h++)
    if (!(objects[h] = create_temporary(target, h ? ".2.o" : ".1.o"))) {
      if (objects[0]) unlink(objects[0]), free(objects[0]);
      return 1;
    }
  // cc FLAGS: then the C (-DAEC_PART=1 -c C -o HALF.o, each half) or the
  // objects, then the libraries.
  char *argv[3][112];
  int n[3] = {0, 0, 0};
  for (int c = 0; c < 3; c++) {
    char **a = argv[c];
    n[c] = split_flags(cc, a, 8);
    n[c] += split_flags("-std=gnu11 -fopenmp -fno-math-errno -DAEC_LIBMVEC -Wall -Wextra", a + n[c], 8);
    if (mpi) a[n[c]++] = "-DAERT_MPI";
    n[c] += split_flags(cflags, a + n[c], 32);
  }
  for (int h = 0; h < 2; h++) {
    char **a = argv[h];
    a[n[h]++] = h ? "-DAEC_PART=2" : "-DAEC_PART=1";
    a[n[h]++] = include;
    a[n[h]++] = "-c";
    a[n[h]++] = (char *)c_path;
    a[n[h]++] = "-o";
    a[n[h]++] = objects[h];
    a[n[h]] = NULL;
  }
  char **link = argv[2];
  if (whole) {
    link[n[2]++] = include;
    link[n[2]++] = (char *)c_path;
  } else {
    link[n[2]++] = objects[0];
    link[n[2]++] = objects[1];
  }
  if (mpi) link[n[2]++] = mpi_lib;
  link[n[2]++] = lib;
  n[2] += split_flags(AEC_RUNTIME_LIBS " -lmvec -lm", link + n[2], 24);
  link[n[2]++] = "-o";
  link[n[2]++] = (char *)output;
  link[n[2]] = NULL;
  bool ok = true;
  if (!whole) {
    pid_t first = start_command(argv[0], verbose), second = first > 0 ? start_command(argv[1], verbose) : -1;
    ok = command_succeeded(first);
    ok &= second > 0 && command_succeeded(second);
  }
  ok = ok && command_succeeded(start_command(link, verbose));
  if (!ok && diag_error_count() == 0)
    diag_error_plain("the C compiler failed on '%s' (the generated C is kept there)", c_path);
  for (int h = 0; h < 2; h++)
    if (objects[h]) unlink(objects[h]), free(objects[h]);
  free(lib), free(mpi_lib), free(include), free(dir.lib_dir), free(dir.include_dir);
  return ok ? 0 : 1;
}

// aec --lib: BASE.h and BASE.c (BASE: -o without its .c or .h, or the
// model's name), each through a temporary renamed over it.
// The bytes of the checkpoint --weights names (checked when the library opens it).
static unsigned char *read_weights(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 8) {
    diag_error_plain("--weights %s: %s; give the .safetensors file the model's program trained", path,
                     !f ? strerror(errno) : "not a checkpoint (a regular file of 8 bytes or more)");
    if (f) fclose(f);
    return NULL;
  }
  unsigned char *data = malloc((size_t)st.st_size);
  if (!data || fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
    diag_error_plain("--weights %s: cannot read it: %s", path, data ? strerror(errno) : "out of memory");
    free(data), data = NULL;
  }
  fclose(f);
  *size = (size_t)st.st_size;
  return data;
}

static int write_library(const Options *o, const ProgramPlan *plan, EmitOptions *eo) {
  char *base = strdup(o->output ? o->output : eo->model_name);
  if (ends_with(base, ".c") || ends_with(base, ".h")) base[strlen(base) - 2] = '\0';
  const char *slash = strrchr(base, '/');
  char *c_final = NULL, *h_final = NULL, *h_name = NULL;
  if (asprintf(&c_final, "%s.c", base) < 0 || asprintf(&h_final, "%s.h", base) < 0 ||
      asprintf(&h_name, "%s.h", slash ? slash + 1 : base) < 0)
    return 1;
  int status = 1;
  unsigned char *weights = NULL;
  if (o->weights && !(weights = read_weights(o->weights, &eo->weights_size))) {
    // said why
  } else if (!include_name_ok(h_name)) {
    diag_error_plain("--lib -o %s: the C includes the header by its name, so it takes letters, digits, '.', '_', "
                     "'-' and '+' only; give another name, like -o %s", base, eo->model_name);
  } else {
    eo->library_header = h_name;
    eo->c_name = c_final;
    eo->weights = weights, eo->weights_name = o->weights;
    char *c_target = output_target(c_final), *h_target = c_target ? output_target(h_final) : NULL;
    char *c_tmp = h_target ? create_temporary(c_target, "") : NULL, *h_tmp = c_tmp ? create_temporary(h_target, "") : NULL;
    FILE *h = h_tmp ? fopen(h_tmp, "w") : NULL;
    bool ok = h && write_c_file(c_tmp, c_final, plan, eo);
    if (h) {
      ok = ok && emit_library_header(h, plan, eo);  // cgen/library.c
      ok &= fflush(h) == 0 && fsync(fileno(h)) == 0;
      ok &= fclose(h) == 0;
      if (!ok && diag_error_count() == 0) diag_error_plain("cannot write '%s': %s", h_final, strerror(errno));
    }
    if (ok && (rename(c_tmp, c_target) != 0 || rename(h_tmp, h_target) != 0)) {
      diag_error_plain("cannot write '%s': %s", base, strerror(errno));
      ok = false;
    }
    if (!ok && c_tmp) unlink(c_tmp);
    if (!ok && h_tmp) unlink(h_tmp);
    status = ok ? 0 : 1;
    free(c_target), free(h_target), free(c_tmp), free(h_tmp);
  }
  free(base), free(c_final), free(h_final), free(h_name), free(weights);
  return status;
}

// --mpi splits each batch between processes, and a gradient is summed over
// them: exact for a loss that is a mean over samples, not for an op that
// reads statistics of the whole batch at once (the op table's batch_statistics).
static void refuse_batch_statistics(const Graph *g) {
  for (int i = 0; i < g->n_nodes; i++) {
    const char *reads = op_info(g->nodes[i].op)->batch_statistics;
    if (reads && !g->nodes[i].is_backward)
      diag_error(g->nodes[i].loc,
                 "%s reads %s of the whole batch, but under --mpi each process holds only its share of the batch; "
                 "build this model without --mpi, or leave %s out",
                 op_name(g->nodes[i].op), reads, op_name(g->nodes[i].op));
  }
}

// The whole pipeline: parse, lower, differentiate, plan, then write C (or
// show what a tool asks for). Each pass's file is named beside it.
int main(int argc, char **argv) {
  Options o = {.opt_level = 2};
  int rc = parse_options(argc, argv, &o);
  if (rc) return rc;
  FILE *ir = o.dump_ir ? stdout : NULL;
  Source *src = source_load(o.input);                       // dsl/source.c
  if (!src) return 1;
  Program *program = parse_program(src);                    // dsl/parser.c, dsl/lexer.re
  Graph *g = NULL;
  if (program && diag_error_count() == 0) g = lower_program(program, o.defines, o.n_defines);  // front/lower.c
  if (g && ir && diag_error_count() == 0) dump_graph(ir, g, "lower_program (shapes, weights, losses)");
  if (g && diag_error_count() == 0) autodiff(g);            // passes/autodiff.c
  if (g && ir && diag_error_count() == 0) dump_graph(ir, g, "autodiff (backward nodes per step)");
  if (g && o.mpi) refuse_batch_statistics(g);
  if (!g || diag_error_count() > 0) {
    graph_free(g);
    ast_free_all();
    source_free(src);
    return 1;
  }
  int status = 0;
  if (o.summary) print_summary(stdout, g);                  // tools/summary.c
  ProgramPlan *plan = NULL;
  if (!o.summary || o.dump_ir || o.stats || o.dot) {
    plan_inference(g);                                      // passes/inference.c
    if (ir) dump_graph(ir, g, "plan_inference (inference versions of losses, code, reconstruction)");
    plan = plan_program(g, o.opt_level, o.dtype);           // passes/plan.c: schedule, fuse, memory, share
    if (!plan->fits) status = 1;
  }
  if (o.summary || o.dump_ir || o.stats || o.dot) {         // tools/: they read the plan, write no C
    if (o.stats) print_stats(stdout, plan, o.dtype);
    for (int p = 0; ir && p < plan->n_functions; p++)
      if (plan->functions[p]) dump_function(ir, g, plan->functions[p]);
    if (o.dot) write_dot(stdout, g, plan->functions, g->n_steps);
  } else if (status == 0) {                                 // cgen/: the program
    char hash[32];
    hash_source(src, &o, hash, sizeof hash);
    char *name = model_name_of(o.input);
    char *command = canonical_options(&o);
    EmitOptions eo = {.opt_level = o.opt_level, .source_path = o.input, .model_name = name, .source_hash = hash, .dtype = o.dtype,
                      .command_line = command};
    if (o.lib) {
      eo.line_directives = o.line_directives;
      status = write_library(&o, plan, &eo);
      free(command), free(name);
      goto done;
    }
    bool compile = o.output && !ends_with(o.output, ".c");
    char *final = NULL, *target = NULL, *c_path = NULL, *exe = NULL, *kept = NULL;
    if (!o.output && asprintf(&final, "%s.c", name) < 0) return 1;
    if (o.output) final = strdup(o.output);
    if (!(target = output_target(final)) || !(c_path = create_temporary(target, compile ? ".c" : "")) ||
        (compile && !(exe = create_temporary(target, "")))) {
      if (c_path) unlink(c_path);
      status = 1;
    } else {
      eo.line_directives = o.line_directives;
      if (compile && o.keep_c && asprintf(&kept, "%s.c", final) < 0) kept = NULL;
      eo.c_name = compile ? (kept ? kept : c_path) : final;
      bool written = write_c_file(c_path, final, plan, &eo);
      status = !written ? 1 : compile ? compile_program(c_path, exe, target, o.dtype, o.verbose, o.mpi) : 0;
      bool keep_c = compile && written && status != 0;  // the C compiler failed on it: kept, and named
      if (status == 0 && rename(compile ? exe : c_path, target) != 0) {
        diag_error_plain("cannot write '%s': %s", final, strerror(errno));
        status = 1;
      }
      char *kept_target = kept && status == 0 ? output_target(kept) : NULL;
      if (kept && status == 0 && !kept_target) {
        status = 1;  // output_target said why
      } else if (kept_target && rename(c_path, kept_target) != 0) {
        diag_error_plain("cannot write '%s': %s", kept, strerror(errno));
        status = 1;
      } else if (kept_target) {
        keep_c = true;  // renamed: nothing left to remove
      }
      free(kept_target);
      if (compile ? !keep_c : status != 0) unlink(c_path);
      if (exe && status != 0) unlink(exe);
    }
    free(final), free(target), free(exe), free(kept);
    free(c_path), free(command), free(name);
  }
done:
  program_plan_free(plan);
  graph_free(g);
  ast_free_all();
  source_free(src);
  for (int i = 0; i < o.n_defines; i++) free((char *)o.defines[i].name);
  return status;
}
