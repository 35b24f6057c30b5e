// fuzz_ae.c — libFuzzer harness for the .ae front end and compiler: the
// lexer, the parser, lowering (shapes), autodiff and the emitter, run on
// arbitrary bytes exactly as `aec FILE.ae -o model.c` runs them, with the C
// written to /dev/null. Diagnostics go to /dev/null too.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  sink = fopen("/dev/null", "w");
  if (!getenv("AEC_FUZZ_VERBOSE")) diag_set_output(sink);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 20) return -1;  // keep runs fast; a 10 MB line is tests/bad's job
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';  // an embedded NUL ends the text, as when read from a file
  diag_reset();
  Source *src = source_from_string("fuzz.ae", text);
  free(text);
  Program *program = parse_program(src);
  Graph *g = NULL;
  if (program && diag_error_count() == 0) g = lower_program(program, NULL, 0);
  if (g && diag_error_count() == 0) autodiff(g);
  if (g && diag_error_count() == 0) {
    EmitOptions eo = {.opt_level = size % 2 ? 0 : 2, .source_path = "fuzz.ae", .model_name = "fuzz",
                      .source_hash = "0", .dtype = DTYPE_F32, .command_line = "", .c_name = "fuzz.c"};
    rewind(sink);
    plan_inference(g);
    ProgramPlan *plan = plan_program(g, eo.opt_level, eo.dtype);
    emit_program(sink, plan, &eo);
    program_plan_free(plan);
  }
  graph_free(g);
  ast_free_all();
  source_free(src);
  return 0;
}
