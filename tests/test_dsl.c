// test_dsl.c — the front end: lexer, diagnostics, parser and AST printer.
// Diagnostics are captured with open_memstream and compared in full.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsl.h"
#include "tests.h"

#define STATEMENT_WORDS "a statement (param, input, net, loss, train or NAME = ...)"

// ---------------------------------------------------------------- helpers

typedef struct Parsed {
  char *diagnostics;  // everything diag_* printed
  char *ast;          // ast_print of the result
  int errors;         // diag_error_count()
  int n_stmts;        // -1 when parse_program returned NULL
} Parsed;

// Diagnostics go to a memory stream between capture_begin and capture_end.
typedef struct Capture {
  FILE *out;
  char *text;
  size_t size;
} Capture;

static void capture_begin(Capture *capture) {
  capture->text = NULL;
  capture->out = open_memstream(&capture->text, &capture->size);
  ck_assert_ptr_nonnull(capture->out);
  diag_set_output(capture->out);
  diag_reset();
}

static char *capture_end(Capture *capture) {
  diag_set_output(NULL);
  ck_assert_int_eq(fclose(capture->out), 0);
  return capture->text;
}

// Parses a source, captured since capture_begin, and frees it.
static Parsed parse_source(Source *source, Capture *capture) {
  Parsed parsed;
  Program *program = parse_program(source);
  parsed.errors = diag_error_count();
  parsed.diagnostics = capture_end(capture);
  size_t size;
  FILE *ast = open_memstream(&parsed.ast, &size);
  ast_print(ast, program);
  fclose(ast);
  parsed.n_stmts = program ? program->n_stmts : -1;
  ast_free_all();
  source_free(source);
  return parsed;
}

// A text that may hold NUL bytes, as file t.ae.
static Parsed parse_bytes(const char *bytes, size_t length) {
  Capture capture;
  capture_begin(&capture);
  return parse_source(source_from_bytes("t.ae", bytes, length), &capture);
}

static Parsed parse(const char *text) { return parse_bytes(text, strlen(text)); }

static void parsed_free(Parsed *parsed) {
  free(parsed->diagnostics);
  free(parsed->ast);
}

// Asserts that `text` parses with exactly the diagnostics `expected`.
static void check_diagnostics(const char *text, const char *expected, int errors) {
  Parsed parsed = parse(text);
  ck_assert_str_eq(parsed.diagnostics, expected);
  ck_assert_int_eq(parsed.errors, errors);
  parsed_free(&parsed);
}

static char *repeat(char c, size_t n) {
  char *text = malloc(n + 1);
  memset(text, c, n);
  text[n] = '\0';
  return text;
}

// ------------------------------------------------------------------ lexer

typedef struct Expected {
  TokenKind kind;
  int line, col;
  const char *text;
} Expected;

static void check_tokens(const char *bytes, size_t length, const Expected *expected, int count) {
  Source *source = source_from_bytes("t.ae", bytes, length);
  Lexer lexer;
  lexer_init(&lexer, source);
  for (int i = 0; i < count; i++) {
    Token token = lexer_next(&lexer);
    ck_assert_msg(token.kind == expected[i].kind, "token %d: %s, expected %s", i, token_kind_name(token.kind),
                  token_kind_name(expected[i].kind));
    ck_assert_int_eq(token.loc.line, expected[i].line);
    ck_assert_int_eq(token.loc.col, expected[i].col);
    ck_assert_ptr_eq(token.loc.source, source);
    if (expected[i].text) {
      ck_assert_uint_eq(token.length, strlen(expected[i].text));
      ck_assert_mem_eq(token.start, expected[i].text, token.length);
    }
  }
  source_free(source);
}

START_TEST(test_lexer_every_token_kind) {
  const char *text =
      "net x1 = 256 0.5 .5 1e-3 2.5E+4 \"fashion-mnist:train\"\n"
      "  ( ) { } [ ] , : = -> + - * / # a comment -> ( \"\n"
      "\t_a9\r\n"
      "a->b-1";
  Expected expected[] = {
      {TOK_IDENT, 1, 1, "net"},
      {TOK_IDENT, 1, 5, "x1"},
      {TOK_ASSIGN, 1, 8, "="},
      {TOK_NUMBER, 1, 10, "256"},
      {TOK_NUMBER, 1, 14, "0.5"},
      {TOK_NUMBER, 1, 18, ".5"},
      {TOK_NUMBER, 1, 21, "1e-3"},
      {TOK_NUMBER, 1, 26, "2.5E+4"},
      {TOK_STRING, 1, 33, "fashion-mnist:train"},
      {TOK_LPAREN, 2, 3, "("},
      {TOK_RPAREN, 2, 5, ")"},
      {TOK_LBRACE, 2, 7, "{"},
      {TOK_RBRACE, 2, 9, "}"},
      {TOK_LBRACKET, 2, 11, "["},
      {TOK_RBRACKET, 2, 13, "]"},
      {TOK_COMMA, 2, 15, ","},
      {TOK_COLON, 2, 17, ":"},
      {TOK_ASSIGN, 2, 19, "="},
      {TOK_ARROW, 2, 21, "->"},
      {TOK_PLUS, 2, 24, "+"},
      {TOK_MINUS, 2, 26, "-"},
      {TOK_STAR, 2, 28, "*"},
      {TOK_SLASH, 2, 30, "/"},
      {TOK_IDENT, 3, 2, "_a9"},
      {TOK_IDENT, 4, 1, "a"},
      {TOK_ARROW, 4, 2, "->"},
      {TOK_IDENT, 4, 4, "b"},
      {TOK_MINUS, 4, 5, "-"},
      {TOK_NUMBER, 4, 6, "1"},
      {TOK_EOF, 4, 7, ""},
      {TOK_EOF, 4, 7, ""},  // and it stays there
  };
  check_tokens(text, strlen(text), expected, sizeof expected / sizeof *expected);
}
END_TEST

START_TEST(test_lexer_number_values) {
  Source *source = source_from_string("t.ae", "256 0.5 .5 1e-3 2.5E+4 007");
  double values[] = {256, 0.5, 0.5, 1e-3, 2.5e4, 7};
  Lexer lexer;
  lexer_init(&lexer, source);
  for (int i = 0; i < 6; i++) {
    Token token = lexer_next(&lexer);
    ck_assert_int_eq(token.kind, TOK_NUMBER);
    ck_assert_double_eq(token.number, values[i]);
  }
  ck_assert_int_eq(lexer_next(&lexer).kind, TOK_EOF);
  source_free(source);
}
END_TEST

START_TEST(test_lexer_bad_bytes) {
  Capture capture;
  capture_begin(&capture);
  // A NUL inside the text is a bad byte like any other, not the end.
  const char bytes[] = "a @\0b \"s\0\" 1x é";
  Expected expected[] = {
      {TOK_IDENT, 1, 1, "a"},     {TOK_INVALID, 1, 3, "@"},      {TOK_INVALID, 1, 4, NULL},
      {TOK_IDENT, 1, 5, "b"},     {TOK_STRING, 1, 7, "s"},       {TOK_INVALID, 1, 9, NULL},
      {TOK_STRING, 1, 10, " 1x é"},  // the lone quote opens an unterminated string
      {TOK_EOF, 1, 17, ""},
  };
  check_tokens(bytes, sizeof bytes - 1, expected, sizeof expected / sizeof *expected);
  char *diagnostics = capture_end(&capture);
  ck_assert_str_eq(diagnostics,
                   "t.ae:1:3: error: invalid character '@'\n"
                   "    1 | a @?b \"s?\" 1x ??\n"
                   "      |   ^\n"
                   "t.ae:1:4: error: invalid character '\\x00'\n"
                   "    1 | a @?b \"s?\" 1x ??\n"
                   "      |    ^\n"
                   "t.ae:1:7: error: unterminated string\n"
                   "    1 | a @?b \"s?\" 1x ??\n"
                   "      |       ^\n"
                   "t.ae:1:9: error: invalid character '\\x00'\n"
                   "    1 | a @?b \"s?\" 1x ??\n"
                   "      |         ^\n"
                   "t.ae:1:10: error: unterminated string\n"
                   "    1 | a @?b \"s?\" 1x ??\n"
                   "      |          ^\n");
  free(diagnostics);
}
END_TEST

START_TEST(test_lexer_bad_numbers) {
  check_diagnostics("a = 1x + 1.\nb = 1e999 + é\n",
                    "t.ae:1:5: error: invalid number '1x'\n"
                    "    1 | a = 1x + 1.\n"
                    "      |     ^\n"
                    "t.ae:1:10: error: invalid number '1.'\n"
                    "    1 | a = 1x + 1.\n"
                    "      |          ^\n"
                    "t.ae:2:5: error: number '1e999' is too large\n"
                    "    2 | b = 1e999 + ??\n"
                    "      |     ^\n"
                    "t.ae:2:13: error: invalid character '\\xc3\\xa9' (only ASCII is allowed outside strings and comments)\n"
                    "    2 | b = 1e999 + ??\n"
                    "      |             ^\n"
                    "t.ae:3:1: error: expected an expression but found end of file\n"
                    "    3 | \n"
                    "      | ^\n",
                    5);
}
END_TEST

// ------------------------------------------------------------ diagnostics

START_TEST(test_diag_forms) {
  Capture capture;
  capture_begin(&capture);
  Source *source = source_from_string("m.ae", "one\r\n\ttwo\tx\n");
  diag_error((Loc){source, 2, 6}, "bad %s", "x");
  diag_note((Loc){source, 1, 4}, "see %d", 1);
  diag_error((Loc){NULL, 0, 0}, "no place");
  diag_error_plain("plain %d", 2);
  ck_assert_int_eq(diag_error_count(), 3);
  char *diagnostics = capture_end(&capture);
  ck_assert_str_eq(diagnostics,
                   "m.ae:2:6: error: bad x\n"
                   "    2 |         two     x\n"
                   "      |                 ^\n"
                   "m.ae:1:4: note: see 1\n"
                   "    1 | one\n"
                   "      |    ^\n"
                   "aec: error: no place\n"
                   "aec: error: plain 2\n");
  free(diagnostics);
  source_free(source);
}
END_TEST

START_TEST(test_diag_wide_line_numbers) {
  Capture capture;
  capture_begin(&capture);
  char *text = repeat('\n', 123456);
  Source *source = source_from_string("w.ae", text);
  diag_error((Loc){source, 123457, 1}, "at the end");
  char *diagnostics = capture_end(&capture);
  ck_assert_str_eq(diagnostics,
                   "w.ae:123457:1: error: at the end\n"
                   " 123457 | \n"
                   "        | ^\n");
  free(diagnostics);
  source_free(source);
  free(text);
}
END_TEST

START_TEST(test_too_many_errors) {
  char *text = NULL;
  size_t size;
  FILE *file = open_memstream(&text, &size);
  for (int i = 0; i < 30; i++) fputs("x = )\n", file);
  fclose(file);
  Parsed parsed = parse(text);
  int printed = 0;
  for (const char *at = parsed.diagnostics; (at = strstr(at, ": error: ")); at++) printed++;
  ck_assert_int_eq(printed, DIAG_MAX_ERRORS);
  ck_assert_int_eq(parsed.errors, DIAG_MAX_ERRORS + 1);
  const char *stop = strstr(parsed.diagnostics, "aec: too many errors, stopping\n");
  ck_assert_ptr_nonnull(stop);
  ck_assert_str_eq(stop, "aec: too many errors, stopping\n");  // once, and last
  ck_assert_ptr_nonnull(strstr(parsed.diagnostics, "t.ae:20:5: error: expected an expression but found ')'\n"));
  ck_assert_ptr_null(strstr(parsed.diagnostics, "t.ae:21:"));
  parsed_free(&parsed);
  free(text);
}
END_TEST

START_TEST(test_source_load_missing) {
  Capture capture;
  capture_begin(&capture);
  ck_assert_ptr_null(source_load("/nonexistent/x.ae"));
  ck_assert_ptr_null(source_load("/"));
  ck_assert_int_eq(diag_error_count(), 2);
  char *diagnostics = capture_end(&capture);
  ck_assert_str_eq(diagnostics,
                   "aec: error: cannot read '/nonexistent/x.ae': No such file or directory\n"
                   "aec: error: cannot read '/': Is a directory\n");
  free(diagnostics);
}
END_TEST

// --------------------------------------------------------------- examples

static Parsed parse_example(const char *name) {
  char *path = NULL;
  ck_assert_int_ge(asprintf(&path, "%s/examples/%s", AEC_SOURCE_DIR, name), 0);
  Capture capture;
  capture_begin(&capture);
  Source *source = source_load(path);
  ck_assert_msg(source != NULL, "cannot load %s", path);
  free(path);
  return parse_source(source, &capture);
}

START_TEST(test_examples_parse) {
  static const struct {
    const char *name;
    int n_stmts;
  } examples[] = {
      {"simple.ae", 6}, {"deep.ae", 5},   {"denoise.ae", 6},      {"sparse.ae", 6},
      {"conv.ae", 5},   {"unpool.ae", 4}, {"adversarial.ae", 10},
  };
  for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
    Parsed parsed = parse_example(examples[i].name);
    ck_assert_msg(parsed.errors == 0, "%s: %s", examples[i].name, parsed.diagnostics);
    ck_assert_str_eq(parsed.diagnostics, "");
    ck_assert_msg(parsed.n_stmts == examples[i].n_stmts, "%s: %d statements", examples[i].name, parsed.n_stmts);
    parsed_free(&parsed);
  }
}
END_TEST

START_TEST(test_example_simple_ast) {
  Parsed parsed = parse_example("simple.ae");
  ck_assert_str_eq(parsed.ast,
                   "(param code 32)\n"
                   "(input x (list 784))\n"
                   "(net encoder (pipeline (call dense code relu)))\n"
                   "(net decoder (pipeline (call dense 784 sigmoid)))\n"
                   "(loss recon (call bce (call decoder (call encoder x)) x))\n"
                   "(train (data \"fashion-mnist:train\") (test \"fashion-mnist:test\") (batch 256) (epochs 20)"
                   " (step recon (over encoder decoder) (call adam lr=0.001)))\n");
  parsed_free(&parsed);
}
END_TEST

START_TEST(test_example_asts) {
  Parsed conv = parse_example("conv.ae");
  ck_assert_ptr_nonnull(strstr(conv.ast,
                               "(net encoder (pipeline (call conv 16 3 relu) (call maxpool 2) (call conv 8 3 relu)"
                               " (call maxpool 2) (call conv 8 3 relu) (call maxpool 2 pad=same)))\n"));
  parsed_free(&conv);
  Parsed unpool = parse_example("unpool.ae");
  ck_assert_ptr_nonnull(strstr(unpool.ast,
                               "(net autoencoder (params x) (assign c1 (call conv x 16 3 relu))"
                               " (assign p1 (call maxpool c1 2)) (assign c2 (call conv p1 32 3 relu stride=2))"
                               " (assign d2 (call deconv c2 16 3 relu stride=2))"
                               " (return (call conv (call unpool d2 p1) 1 3 sigmoid)))\n"));
  parsed_free(&unpool);
  Parsed sparse = parse_example("sparse.ae");
  ck_assert_ptr_nonnull(strstr(sparse.ast,
                               "(loss recon (+ (+ (call mse (call decoder h) x) (* 3 (call kl_sparsity h 0.05)))"
                               " (* 0.0001 (call l2 encoder decoder))))\n"));
  parsed_free(&sparse);
  Parsed adversarial = parse_example("adversarial.ae");
  ck_assert_ptr_nonnull(strstr(adversarial.ast,
                               "(train (batch 128) (epochs 30) (step recon (over encoder decoder) (call adam lr=0.001))"
                               " (step disc (over critic) (call adam lr=0.001))"
                               " (step gen (over encoder) (call adam lr=0.001)))\n"));
  parsed_free(&adversarial);
}
END_TEST

// ------------------------------------------------------------------ parser

START_TEST(test_parse_expressions) {
  Parsed parsed = parse(
      "param n = -2\n"
      "x = -a + 2 * -3 / (b - c) - f(1, [2, 3], \"s\", k=-1.5)\n"
      "y = - -g(x) / 4 / 5 + []\n");
  ck_assert_str_eq(parsed.diagnostics, "");
  ck_assert_str_eq(parsed.ast,
                   "(param n -2)\n"
                   "(assign x (- (+ (- a) (/ (* 2 -3) (- b c))) (call f 1 (list 2 3) \"s\" k=-1.5)))\n"
                   "(assign y (+ (/ (/ (- (- (call g x))) 4) 5) (list)))\n");
  parsed_free(&parsed);
}
END_TEST

START_TEST(test_parse_net_forms) {
  Parsed parsed = parse(
      "net one = relu\n"
      "net ae = encoder\n"
      "  -> decoder -> dense(3, stride=2)\n"
      "net two(a, b) { s = a + b  return s }\n");
  ck_assert_str_eq(parsed.diagnostics, "");
  ck_assert_str_eq(parsed.ast,
                   "(net one (pipeline relu))\n"
                   "(net ae (pipeline encoder decoder (call dense 3 stride=2)))\n"
                   "(net two (params a b) (assign s (+ a b)) (return s))\n");
  parsed_free(&parsed);
}
END_TEST

START_TEST(test_keywords_are_names_elsewhere) {
  Parsed parsed = parse(
      "data = 1\ntest = data\nbatch = [data, test]\nnet = 3\nnet n2 = data -> test\n"
      "train { data \"d\" step minimize data over net, test with sgd(lr=0.01, momentum=0.9) }\n");
  ck_assert_str_eq(parsed.diagnostics, "");
  ck_assert_str_eq(parsed.ast,
                   "(assign data 1)\n(assign test data)\n(assign batch (list data test))\n(assign net 3)\n"
                   "(net n2 (pipeline data test))\n"
                   "(train (data \"d\") (step data (over net test) (call sgd lr=0.01 momentum=0.9)))\n");
  parsed_free(&parsed);
}
END_TEST

START_TEST(test_empty_files) {
  const char *texts[] = {"", "\n\n", "# only a comment", "  \t# one\n# two\n"};
  for (int i = 0; i < 4; i++) {
    Parsed parsed = parse(texts[i]);
    ck_assert_int_eq(parsed.errors, 0);
    ck_assert_int_eq(parsed.n_stmts, 0);
    ck_assert_str_eq(parsed.ast, "");
    ck_assert_str_eq(parsed.diagnostics, "");
    parsed_free(&parsed);
  }
}
END_TEST

START_TEST(test_error_missing_paren) {
  Parsed parsed = parse("net e = dense(128 -> dense(3)\nnet d = dense(3)\n");
  ck_assert_str_eq(parsed.diagnostics,
                   "t.ae:1:19: error: expected ')' but found '->'\n"
                   "    1 | net e = dense(128 -> dense(3)\n"
                   "      |                   ^\n"
                   "t.ae:1:14: note: to match this '('\n"
                   "    1 | net e = dense(128 -> dense(3)\n"
                   "      |              ^\n");
  ck_assert_int_eq(parsed.errors, 1);
  ck_assert_str_eq(parsed.ast, "(net d (pipeline (call dense 3)))\n");  // recovered at the next statement
  parsed_free(&parsed);
}
END_TEST

START_TEST(test_error_invalid_byte) {
  check_diagnostics("param a = 1 @ 2\n",
                    "t.ae:1:13: error: invalid character '@'\n"
                    "    1 | param a = 1 @ 2\n"
                    "      |             ^\n"
                    "t.ae:1:15: error: expected " STATEMENT_WORDS " but found number '2'\n"
                    "    1 | param a = 1 @ 2\n"
                    "      |               ^\n",
                    2);
}
END_TEST

START_TEST(test_error_nul_byte_in_file) {
  char *dir = make_temp_dir("dsl");
  char *path = NULL, *expected = NULL;
  ck_assert_int_ge(asprintf(&path, "%s/nul.ae", dir), 0);
  const char bytes[] = "param a = 1\0\nparam b = 2\n";
  write_file(path, bytes, sizeof bytes - 1);
  Capture capture;
  capture_begin(&capture);
  Source *source = source_load(path);
  ck_assert_ptr_nonnull(source);
  ck_assert_uint_eq(source->length, sizeof bytes - 1);
  Parsed parsed = parse_source(source, &capture);
  ck_assert_int_ge(asprintf(&expected,
                            "%s:1:12: error: invalid character '\\x00'\n"
                            "    1 | param a = 1?\n"
                            "      |            ^\n",
                            path),
                   0);
  ck_assert_str_eq(parsed.diagnostics, expected);
  ck_assert_str_eq(parsed.ast, "(param a 1)\n(param b 2)\n");
  parsed_free(&parsed);
  remove_tree(dir);
  free(dir);
  free(path);
  free(expected);
}
END_TEST

START_TEST(test_error_unterminated_string) {
  Parsed parsed = parse("x = \"abc\ny = 2\n");
  ck_assert_str_eq(parsed.diagnostics,
                   "t.ae:1:5: error: unterminated string\n"
                   "    1 | x = \"abc\n"
                   "      |     ^\n");
  ck_assert_str_eq(parsed.ast, "(assign x \"abc\")\n(assign y 2)\n");
  parsed_free(&parsed);
}
END_TEST

START_TEST(test_error_missing_return) {
  Parsed parsed = parse("net f(x) {\n  h = dense(x, 3)\n}\nloss r = bce(f(x), x)\n");
  ck_assert_str_eq(parsed.diagnostics,
                   "t.ae:3:1: error: a net body must end with 'return'\n"
                   "    3 | }\n"
                   "      | ^\n");
  ck_assert_int_eq(parsed.n_stmts, 2);
  parsed_free(&parsed);
}
END_TEST

START_TEST(test_error_net_body_statements) {
  check_diagnostics("net f(x) {\n  return x\n  h = x\n  3\n}\nloss r = f(1)\n",
                    "t.ae:3:3: error: 'return' must be the last statement of a net body\n"
                    "    3 |   h = x\n"
                    "      |   ^\n"
                    "t.ae:4:3: error: expected 'NAME = ...' or 'return' in a net body but found number '3'\n"
                    "    4 |   3\n"
                    "      |   ^\n",
                    2);
  check_diagnostics("net f(x) {\n  return x\nloss r = f(1)\n",
                    "t.ae:3:1: error: expected '}' to close the net body but found identifier 'loss'\n"
                    "    3 | loss r = f(1)\n"
                    "      | ^\n"
                    "t.ae:1:10: note: to match this '{'\n"
                    "    1 | net f(x) {\n"
                    "      |          ^\n",
                    1);
}
END_TEST

START_TEST(test_error_duplicate_setting) {
  check_diagnostics("train { batch 1  epochs 2\n  batch 2 }\n",
                    "t.ae:2:3: error: 'batch' is set twice in the train block\n"
                    "    2 |   batch 2 }\n"
                    "      |   ^\n"
                    "t.ae:1:9: note: first set here\n"
                    "    1 | train { batch 1  epochs 2\n"
                    "      |         ^\n",
                    1);
}
END_TEST

START_TEST(test_error_train_block) {
  check_diagnostics("train { step minimize r over e with adam(lr 1)\n  seed x  step minimize r over with adam()\n"
                    "  data 3 }\ntrain { }\n",
                    "t.ae:1:45: error: expected ')' but found number '1'\n"
                    "    1 | train { step minimize r over e with adam(lr 1)\n"
                    "      |                                             ^\n"
                    "t.ae:1:41: note: to match this '('\n"
                    "    1 | train { step minimize r over e with adam(lr 1)\n"
                    "      |                                         ^\n"
                    "t.ae:2:32: error: expected a net's name but found identifier 'with'\n"
                    "    2 |   seed x  step minimize r over with adam()\n"
                    "      |                                ^\n"
                    "t.ae:3:8: error: expected a data set in quotes (\"fashion-mnist:train\" or a path) but found number '3'\n"
                    "    3 |   data 3 }\n"
                    "      |        ^\n"
                    "t.ae:4:1: error: only one train block is allowed\n"
                    "    4 | train { }\n"
                    "      | ^\n"
                    "t.ae:1:1: note: the first train block is here\n"
                    "    1 | train { step minimize r over e with adam(lr 1)\n"
                    "      | ^\n",
                    4);
}
END_TEST

START_TEST(test_error_positional_after_keyword) {
  check_diagnostics("y = f(a, k=1, b, k=2)\n",
                    "t.ae:1:15: error: positional argument after keyword argument 'k'\n"
                    "    1 | y = f(a, k=1, b, k=2)\n"
                    "      |               ^\n"
                    "t.ae:1:18: error: keyword argument 'k' is given twice\n"
                    "    1 | y = f(a, k=1, b, k=2)\n"
                    "      |                  ^\n",
                    2);
}
END_TEST

START_TEST(test_error_arrow_in_expression) {
  Parsed parsed = parse("z = encoder -> decoder\nloss r = bce(z, x)\n");
  ck_assert_str_eq(parsed.diagnostics,
                   "t.ae:1:13: error: unexpected '->': pipelines only define nets (net NAME = a -> b)\n"
                   "    1 | z = encoder -> decoder\n"
                   "      |             ^\n");
  ck_assert_str_eq(parsed.ast, "(loss r (call bce z x))\n");
  parsed_free(&parsed);
}
END_TEST

START_TEST(test_error_calls) {
  check_diagnostics("a = f(x)(y)\nb = (f)(x)\nreturn 3\n",
                    "t.ae:1:9: error: only a name can be called\n"
                    "    1 | a = f(x)(y)\n"
                    "      |         ^\n"
                    "t.ae:2:8: error: only a name can be called\n"
                    "    2 | b = (f)(x)\n"
                    "      |        ^\n"
                    "t.ae:3:1: error: 'return' is only allowed at the end of a net body\n"
                    "    3 | return 3\n"
                    "      | ^\n",
                    3);
}
END_TEST

START_TEST(test_error_several_in_one_file) {
  Parsed parsed = parse(
      "param a =\n"
      "input x: 784\n"
      "net e = dense(8)\n"
      "loss l = mse(e(x), x\n"
      "train { batch 1 }\n");
  ck_assert_str_eq(parsed.diagnostics,
                   "t.ae:2:1: error: expected an expression but found identifier 'input'\n"
                   "    2 | input x: 784\n"
                   "      | ^\n"
                   "t.ae:2:10: error: expected the input's shape, like [784] but found number '784'\n"
                   "    2 | input x: 784\n"
                   "      |          ^\n"
                   "t.ae:5:1: error: expected ')' but found identifier 'train'\n"
                   "    5 | train { batch 1 }\n"
                   "      | ^\n"
                   "t.ae:4:13: note: to match this '('\n"
                   "    4 | loss l = mse(e(x), x\n"
                   "      |             ^\n");
  ck_assert_int_eq(parsed.errors, 3);
  ck_assert_str_eq(parsed.ast, "(net e (pipeline (call dense 8)))\n(train (batch 1))\n");
  parsed_free(&parsed);
}
END_TEST

START_TEST(test_error_recovery_skips_a_bad_net) {
  Parsed parsed = parse("net f(x y) {\n  h = dense(x, 3)\n  return h\n}\nloss r = 1\n");
  ck_assert_int_eq(parsed.errors, 1);
  ck_assert_ptr_nonnull(strstr(parsed.diagnostics, "t.ae:1:9: error: expected ')' but found identifier 'y'\n"));
  ck_assert_str_eq(parsed.ast, "(loss r 1)\n");
  parsed_free(&parsed);
}
END_TEST

START_TEST(test_error_caret_after_tabs) {
  check_diagnostics("x =\t)\r\n",
                    "t.ae:1:5: error: expected an expression but found ')'\n"
                    "    1 | x =     )\n"
                    "      |         ^\n",
                    1);
}
END_TEST

START_TEST(test_error_on_a_10mb_line) {
  enum { HALF = 5 * 1000 * 1000 };
  char *spaces = repeat(' ', HALF);
  char *text = NULL, *expected = NULL;
  ck_assert_int_ge(asprintf(&text, "x = 1%s)%sy = 2\n", spaces, spaces), 0);
  Parsed parsed = parse(text);
  ck_assert_int_ge(asprintf(&expected,
                            "t.ae:1:%d: error: expected " STATEMENT_WORDS " but found ')'\n"
                            "    1 | ...%60s)%59s...\n"
                            "      | %63s^\n",
                            HALF + 6, "", "", ""),
                   0);
  ck_assert_str_eq(parsed.diagnostics, expected);
  ck_assert_str_eq(parsed.ast, "(assign x 1)\n(assign y 2)\n");
  parsed_free(&parsed);
  free(spaces);
  free(text);
  free(expected);
}
END_TEST

START_TEST(test_error_deep_nesting) {
  enum { N = 100000 };
  char *open = repeat('(', N), *close = repeat(')', N), *text = NULL, *expected = NULL;
  char *window = repeat('(', 120);
  ck_assert_int_ge(asprintf(&text, "x = %s1%s\ny = 2\n", open, close), 0);
  Parsed parsed = parse(text);
  ck_assert_int_ge(asprintf(&expected,
                            "t.ae:1:1005: error: expression nested too deeply (more than 1000 levels)\n"
                            "    1 | ...%s...\n"
                            "      | %63s^\n",
                            window, ""),
                   0);
  ck_assert_str_eq(parsed.diagnostics, expected);
  ck_assert_str_eq(parsed.ast, "(assign y 2)\n");
  parsed_free(&parsed);
  free(text);
  free(expected);

  // Brackets, minus signs and long operator chains count as well.
  char *minus = repeat('-', N), *brackets = repeat('[', N);
  ck_assert_int_ge(asprintf(&text, "a = %s1\nb = %s\nc = 1%s\n", minus, brackets, "+1+1+1"), 0);
  parsed = parse(text);
  ck_assert_int_eq(parsed.errors, 2);
  ck_assert_ptr_nonnull(strstr(parsed.diagnostics, "t.ae:1:1004: error: expression nested too deeply"));
  ck_assert_ptr_nonnull(strstr(parsed.diagnostics, "t.ae:2:1005: error: expression nested too deeply"));
  ck_assert_str_eq(parsed.ast, "(assign c (+ (+ (+ 1 1) 1) 1))\n");
  parsed_free(&parsed);
  free(text);
  free(open), free(close), free(window), free(minus), free(brackets);
}
END_TEST

START_TEST(test_binary_garbage) {
  enum { SIZE = 1 << 20 };
  unsigned char *bytes = malloc(SIZE);
  unsigned state = 12345;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < SIZE; i++) {
      state = state * 1103515245u + 12345u;
      // round 1: only bytes that make tokens, so that the parser does the complaining
      bytes[i] = round == 1 ? "(){}[],:=-+*/abx 1\n\""[(state >> 16) % 20] : (char)(state >> 16);
    }
    Parsed parsed = parse_bytes((const char *)bytes, round == 3 ? 7 : SIZE);
    ck_assert_int_ge(parsed.errors, round == 3 ? 0 : 1);
    ck_assert_int_le(parsed.errors, DIAG_MAX_ERRORS + 1);
    ck_assert_uint_lt(strlen(parsed.diagnostics), 64 * 1024);  // windows keep the echo short
    parsed_free(&parsed);
  }
  free(bytes);
}
END_TEST

Suite *dsl_suite(void) {
  Suite *suite = suite_create("dsl");
  TCase *lexer = tcase_create("lexer");
  tcase_add_test(lexer, test_lexer_every_token_kind);
  tcase_add_test(lexer, test_lexer_number_values);
  tcase_add_test(lexer, test_lexer_bad_bytes);
  tcase_add_test(lexer, test_lexer_bad_numbers);
  suite_add_tcase(suite, lexer);

  TCase *diag = tcase_create("diag");
  tcase_add_test(diag, test_diag_forms);
  tcase_add_test(diag, test_diag_wide_line_numbers);
  tcase_add_test(diag, test_too_many_errors);
  tcase_add_test(diag, test_source_load_missing);
  suite_add_tcase(suite, diag);

  TCase *parser = tcase_create("parser");
  tcase_set_timeout(parser, 60);  // the 10 MB line and garbage tests under valgrind
  tcase_add_test(parser, test_examples_parse);
  tcase_add_test(parser, test_example_simple_ast);
  tcase_add_test(parser, test_example_asts);
  tcase_add_test(parser, test_parse_expressions);
  tcase_add_test(parser, test_parse_net_forms);
  tcase_add_test(parser, test_keywords_are_names_elsewhere);
  tcase_add_test(parser, test_empty_files);
  tcase_add_test(parser, test_error_missing_paren);
  tcase_add_test(parser, test_error_invalid_byte);
  tcase_add_test(parser, test_error_nul_byte_in_file);
  tcase_add_test(parser, test_error_unterminated_string);
  tcase_add_test(parser, test_error_missing_return);
  tcase_add_test(parser, test_error_net_body_statements);
  tcase_add_test(parser, test_error_duplicate_setting);
  tcase_add_test(parser, test_error_train_block);
  tcase_add_test(parser, test_error_positional_after_keyword);
  tcase_add_test(parser, test_error_arrow_in_expression);
  tcase_add_test(parser, test_error_calls);
  tcase_add_test(parser, test_error_several_in_one_file);
  tcase_add_test(parser, test_error_recovery_skips_a_bad_net);
  tcase_add_test(parser, test_error_caret_after_tabs);
  tcase_add_test(parser, test_error_on_a_10mb_line);
  tcase_add_test(parser, test_error_deep_nesting);
  tcase_add_test(parser, test_binary_garbage);
  suite_add_tcase(suite, parser);
  return suite;
}
