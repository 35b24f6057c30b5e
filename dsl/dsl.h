// dsl.h — the front end of aec: source files, diagnostics, tokens, the AST
// and the parser. One section per .c file. Nothing here knows about tensors.
#ifndef AEC_DSL_H
#define AEC_DSL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

// ---------------------------------------------------------------- source.c
// A loaded `.ae` text. Every location points back at one of these so that a
// diagnostic can print the offending line.
typedef struct Source {
  const char *path;  // as the user named it
  char *text;        // NUL-terminated copy of the file
  size_t length;     // bytes, not counting the terminator
  size_t *line_start;  // [n_lines] offset of each line's first byte, so a line is found in O(1)
  int n_lines;
} Source;

typedef struct Loc {
  const Source *source;  // NULL for compiler-made things with no place
  int line;              // 1-based
  int col;               // 1-based, in bytes
} Loc;

// Reads a whole file. On failure prints `aec: cannot read 'PATH': reason`
// through the diagnostics and returns NULL.
Source *source_load(const char *path);
// Wraps text already in memory (tests, -D expansions). Copies the text.
Source *source_from_string(const char *path, const char *text);
// The same for `length` bytes that may hold NULs (tests of the lexer).
Source *source_from_bytes(const char *path, const char *bytes, size_t length);
void source_free(Source *source);
// (diag.c) The bytes of line `line` (1-based), without its line end (\n or \r\n);
// a line outside the text is empty.
const char *source_line_text(const Source *source, int line, size_t *length);

// ------------------------------------------------------------------ diag.c
// Diagnostics are printed as
//   file:line:col: error: message
//     <the source line>
//     <spaces>^
// and counted. After too many errors the compiler stops early.
enum { DIAG_MAX_ERRORS = 20 };

void diag_set_output(FILE *out);  // default stderr; tests capture with a memstream
void diag_reset(void);            // count back to zero
int diag_error_count(void);
void diag_error(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_verror(Loc loc, const char *fmt, va_list ap);
void diag_note(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// An error with no source place: `aec: error: message`.
void diag_error_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The candidate nearest `word` in edit distance (an insertion, deletion,
// substitution or swap of neighbours each counting 1), when it is within a
// third of the word's length (at least 1 from two letters on) and not the word
// itself; else NULL.
// For "did you mean ...?" suggestions.
const char *diag_nearest(const char *word, const char *const *candidates, int n);

// ------------------------------------------------------------- lexer.re
typedef enum TokenKind {
  TOK_EOF,
  TOK_IDENT,     // words, keywords included: the parser decides by context
  TOK_NUMBER,    // 256, 0.5, 1e-3
  TOK_STRING,    // "fashion-mnist:train" (quotes removed in Token.text)
  TOK_LPAREN,    // (
  TOK_RPAREN,    // )
  TOK_LBRACE,    // {
  TOK_RBRACE,    // }
  TOK_LBRACKET,  // [
  TOK_RBRACKET,  // ]
  TOK_COMMA,     // ,
  TOK_COLON,     // :
  TOK_ASSIGN,    // =
  TOK_ARROW,     // ->
  TOK_PLUS,      // +
  TOK_MINUS,     // -
  TOK_STAR,      // *
  TOK_SLASH,     // /
  TOK_DOT,       // .  (a layer's name: encoder.dense_1)
  TOK_INVALID,   // a byte that starts no token; already reported
} TokenKind;

typedef struct Token {
  TokenKind kind;
  Loc loc;
  const char *start;  // into Source.text
  size_t length;
  double number;      // TOK_NUMBER
} Token;

typedef struct Lexer {
  const Source *source;
  const char *cursor;
  const char *line_start;
  int line;
} Lexer;

void lexer_init(Lexer *lexer, const Source *source);
Token lexer_next(Lexer *lexer);  // reports bad bytes and unterminated strings itself
const char *token_kind_name(TokenKind kind);  // "identifier", "'('", ...

// -------------------------------------------------------------------- ast.c
// All AST memory comes from one arena, released by ast_free_all().
void *ast_alloc(size_t size);  // zeroed
char *ast_strndup(const char *text, size_t length);
void ast_free_all(void);

typedef struct Ident {
  const char *name;
  Loc loc;
} Ident;

typedef enum ExprKind {
  EXPR_NUMBER,    // 0.5
  EXPR_STRING,    // "fashion-mnist:train"
  EXPR_NAME,      // relu, x, code
  EXPR_CALL,      // dense(128, relu, stride=2)
  EXPR_LIST,      // [1, 28, 28]
  EXPR_BINARY,    // a + b, a - b, a * b, a / b
  EXPR_NEGATE,    // -a
  EXPR_PIPELINE,  // dense(128, relu) -> dense(32)  (only as a net's body)
  EXPR_MEMBER,    // encoder.dense_1: a net's layer (lhs the net's EXPR_NAME, rhs the layer's)
} ExprKind;

typedef struct Expr Expr;

typedef struct Arg {
  const char *keyword;  // NULL for a positional argument
  Loc loc;              // of the keyword, or of the value
  Expr *value;
} Arg;

struct Expr {
  ExprKind kind;
  Loc loc;
  double number;     // EXPR_NUMBER
  const char *name;  // EXPR_NAME, EXPR_STRING text, EXPR_CALL callee, EXPR_MEMBER "net.layer"
  char op;           // EXPR_BINARY: '+', '-', '*', '/'
  Expr *lhs, *rhs;   // EXPR_BINARY, EXPR_MEMBER; EXPR_NEGATE uses lhs
  Arg *args;         // EXPR_CALL: positional arguments first, then keywords
  int n_args;
  Expr **items;      // EXPR_LIST elements, EXPR_PIPELINE stages (each an EXPR_CALL or EXPR_NAME)
  int n_items;
};

typedef enum StmtKind {
  STMT_PARAM,   // param code = 32
  STMT_INPUT,   // input x: [784]
  STMT_NET,     // net encoder = a -> b    |   net critic(z) { ... }
  STMT_ASSIGN,  // z = encoder(x)   |   mean, logvar = encoder(x)
  STMT_LOSS,    // loss recon = bce(...)
  STMT_RETURN,  // return e   |   return a, b   (only inside a functional net)
  STMT_TRAIN,   // train { ... }
} StmtKind;

typedef struct TrainSetting {
  Ident key;    // data, test, batch, epochs, seed, validation, patience
  Expr *value;  // EXPR_STRING for data/test (and validation FILE), EXPR_NUMBER (or a param name) otherwise
} TrainSetting;

typedef struct TrainStep {
  Loc loc;        // of the word `step`
  Ident loss;     // the named loss it minimizes
  Ident *nets;    // the nets whose parameters it changes
  int n_nets;
  Expr *optimizer;  // EXPR_CALL: adam(lr=0.001), sgd(lr=0.01, momentum=0.9)
} TrainStep;

typedef struct Stmt Stmt;
struct Stmt {
  StmtKind kind;
  Loc loc;       // of the statement's first token
  Ident name;    // PARAM, INPUT, NET, ASSIGN, LOSS
  Expr *value;   // PARAM number; INPUT shape (EXPR_LIST); NET pipeline form
                 // (EXPR_PIPELINE, or a single stage); ASSIGN, LOSS, RETURN
  // ASSIGN of several names (`mean, logvar = encoder(x)`): every name, the
  // first being `name`; RETURN of several values: every value, the first
  // being `value`. Both NULL (0) for one.
  Ident *names;
  int n_names;
  Expr **values;
  int n_values;
  // STMT_NET, functional form (value == NULL):
  Ident *net_params;
  int n_net_params;
  Stmt **body;   // ASSIGN statements and one RETURN
  int n_body;
  // STMT_TRAIN:
  TrainSetting *settings;
  int n_settings;
  TrainStep *steps;
  int n_steps;
};

typedef struct Program {
  const Source *source;
  Stmt **stmts;
  int n_stmts;
} Program;

// Prints the AST in a stable S-expression-like form (tests, --dump-ast).
void ast_print(FILE *out, const Program *program);

// ----------------------------------------------------------------- parser.c
// Parses a whole file. Errors are reported through diag_* (the parser
// recovers at the next statement and goes on, so one run reports several);
// the result is NULL only when nothing could be parsed. Check
// diag_error_count() before using the program.
Program *parse_program(const Source *source);

#endif
