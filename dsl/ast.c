// ast.c — the arena every AST node lives in, and the AST printer.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsl.h"

// ------------------------------------------------------------------ arena
// Blocks are chained and never reused, so memory from calloc stays zeroed.
// An allocation too big for a block gets a block of its own.
enum { BLOCK_SIZE = 64 * 1024, ALIGN = 16 };

typedef struct Block {
  struct Block *next;
  size_t used, size;
  _Alignas(ALIGN) unsigned char data[];
} Block;

static Block *blocks;

static Block *new_block(size_t size) {
  Block *block = calloc(1, sizeof(Block) + size);
  if (!block) {
    fputs("aec: out of memory\n", stderr);
    exit(EXIT_FAILURE);
  }
  block->size = size;
  return block;
}

void *ast_alloc(size_t size) {
  if (size > SIZE_MAX / 2) size = SIZE_MAX / 2;  // calloc will fail and say so
  size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (size > BLOCK_SIZE / 4) {
    Block *block = new_block(size);
    block->used = size;
    if (blocks) {
      block->next = blocks->next;  // keep the current block in front
      blocks->next = block;
    } else {
      blocks = block;
    }
    return block->data;
  }
  if (!blocks || blocks->size - blocks->used < size) {
    Block *block = new_block(BLOCK_SIZE);
    block->next = blocks;
    blocks = block;
  }
  void *memory = blocks->data + blocks->used;
  blocks->used += size;
  return memory;
}

char *ast_strndup(const char *text, size_t length) {
  char *copy = ast_alloc(length + 1);
  memcpy(copy, text, length);
  return copy;
}

void ast_free_all(void) {
  while (blocks) {
    Block *next = blocks->next;
    free(blocks);
    blocks = next;
  }
}

// ---------------------------------------------------------------- printer
// One top-level statement per line, e.g.
//   (net encoder (pipeline (call dense 128 relu) (call dense code relu)))
//   (net critic (params z) (assign h (call dense z 64 relu)) (return (call dense h 1 sigmoid)))
//   (loss recon (+ (call mse p x) (* 3 (- y))))
//   (train (batch 256) (step recon (over encoder decoder) (call adam lr=0.001)))

// The shortest of %.15g and %.17g that reads back as the same number.
static void print_number(FILE *out, double value) {
  char text[32];
  snprintf(text, sizeof text, "%.15g", value);
  if (strtod(text, NULL) != value) snprintf(text, sizeof text, "%.17g", value);
  fputs(text, out);
}

static void print_string(FILE *out, const char *text) {
  fputc('"', out);
  for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
    if (*c == '"' || *c == '\\')
      fprintf(out, "\\%c", *c);
    else if (*c < ' ' || *c >= 0x7f)
      fprintf(out, "\\x%02x", *c);
    else
      fputc(*c, out);
  }
  fputc('"', out);
}

static void print_expr(FILE *out, const Expr *expr) {
  if (!expr) {
    fputs("?", out);
    return;
  }
  switch (expr->kind) {
  case EXPR_NUMBER: print_number(out, expr->number); return;
  case EXPR_STRING: print_string(out, expr->name); return;
  case EXPR_NAME:
  case EXPR_MEMBER: fputs(expr->name, out); return;
  case EXPR_CALL:
    fprintf(out, "(call %s", expr->name);
    for (int i = 0; i < expr->n_args; i++) {
      fputc(' ', out);
      if (expr->args[i].keyword) fprintf(out, "%s=", expr->args[i].keyword);
      print_expr(out, expr->args[i].value);
    }
    fputc(')', out);
    return;
  case EXPR_LIST:
  case EXPR_PIPELINE:
    fputs(expr->kind == EXPR_LIST ? "(list" : "(pipeline", out);
    for (int i = 0; i < expr->n_items; i++) {
      fputc(' ', out);
      print_expr(out, expr->items[i]);
    }
    fputc(')', out);
    return;
  case EXPR_BINARY:
    fprintf(out, "(%c ", expr->op);
    print_expr(out, expr->lhs);
    fputc(' ', out);
    print_expr(out, expr->rhs);
    fputc(')', out);
    return;
  case EXPR_NEGATE:
    fputs("(- ", out);
    print_expr(out, expr->lhs);
    fputc(')', out);
    return;
  }
  fputs("?", out);
}

static void print_train(FILE *out, const Stmt *stmt) {
  fputs("(train", out);
  for (int i = 0; i < stmt->n_settings; i++) {
    fprintf(out, " (%s ", stmt->settings[i].key.name);
    print_expr(out, stmt->settings[i].value);
    fputc(')', out);
  }
  for (int i = 0; i < stmt->n_steps; i++) {
    const TrainStep *step = &stmt->steps[i];
    fprintf(out, " (step %s (over", step->loss.name);
    for (int j = 0; j < step->n_nets; j++) fprintf(out, " %s", step->nets[j].name);
    fputs(") ", out);
    print_expr(out, step->optimizer);
    fputc(')', out);
  }
  fputc(')', out);
}

static void print_stmt(FILE *out, const Stmt *stmt) {
  static const char *names[] = {
      [STMT_PARAM] = "param", [STMT_INPUT] = "input", [STMT_NET] = "net",     [STMT_ASSIGN] = "assign",
      [STMT_LOSS] = "loss",   [STMT_RETURN] = "return", [STMT_TRAIN] = "train",
  };
  if (stmt->kind == STMT_TRAIN) {
    print_train(out, stmt);
    return;
  }
  fprintf(out, "(%s", names[stmt->kind]);
  if (stmt->n_names > 1)
    for (int i = 0; i < stmt->n_names; i++) fprintf(out, " %s", stmt->names[i].name);
  else if (stmt->kind != STMT_RETURN)
    fprintf(out, " %s", stmt->name.name);
  if (stmt->kind == STMT_NET && !stmt->value) {
    fputs(" (params", out);
    for (int i = 0; i < stmt->n_net_params; i++) fprintf(out, " %s", stmt->net_params[i].name);
    fputc(')', out);
    for (int i = 0; i < stmt->n_body; i++) {
      fputc(' ', out);
      print_stmt(out, stmt->body[i]);
    }
  } else if (stmt->n_values > 1) {
    for (int i = 0; i < stmt->n_values; i++) {
      fputc(' ', out);
      print_expr(out, stmt->values[i]);
    }
  } else {
    fputc(' ', out);
    print_expr(out, stmt->value);
  }
  fputc(')', out);
}

void ast_print(FILE *out, const Program *program) {
  for (int i = 0; program && i < program->n_stmts; i++) {
    print_stmt(out, program->stmts[i]);
    fputc('\n', out);
  }
}
