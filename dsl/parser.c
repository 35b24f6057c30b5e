// parser.c — recursive descent from tokens to the AST of dsl.h.
//
//   program   = statement*
//   statement = "param" NAME "=" expr
//             | "input" NAME ":" list
//             | "net" NAME "=" stage ("->" stage)*
//             | "net" NAME "(" NAME ("," NAME)* ")" "{" (NAME "=" expr)* "return" expr "}"
//             | "loss" NAME "=" expr
//             | "train" "{" (setting | step)* "}"
//             | NAME "=" expr
//   stage     = NAME | NAME "(" args ")"
//   setting   = ("data" | "test") STRING | ("batch" | "epochs" | "seed" | "patience") expr
//             | "validation" (STRING | expr)
//   step      = "step" "minimize" NAME "over" NAME ("," NAME)* "with" NAME "(" args ")"
//   expr      = product (("+" | "-") product)*
//   product   = unary (("*" | "/") unary)*
//   unary     = "-" unary | primary
//   primary   = NUMBER | STRING | NAME | NAME "(" args ")" | list | "(" expr ")"
//   args      = (arg ("," arg)*)?     arg = (NAME "=")? expr
//   list      = "[" (expr ("," expr)*)? "]"
//
// Keywords are identifiers that mean something only in their place, so
// `data` or `test` remain good names elsewhere; `NAME =` always assigns.
//
// An error is reported and then longjmp()s to the innermost statement loop
// (the program, a net body or the train block), which skips to a token that
// can start the next statement there and goes on.
#include <setjmp.h>
#include <string.h>

#include "dsl.h"

// Deeper expressions are refused rather than risk the stack, here and in
// every pass that recurses over the AST. It counts nesting and operators.
enum { MAX_DEPTH = 1000 };

typedef enum { IN_PROGRAM, IN_NET_BODY, IN_TRAIN } Context;

typedef struct Parser {
  Lexer lexer;
  Token tok;         // the current token
  Token next;        // the one after it, when has_next
  bool has_next;
  int prev_line;     // line of the last consumed token: tells which tokens start a line
  int nesting;       // '(' and '[' open in the current statement
  int depth;         // expression depth, against MAX_DEPTH
  jmp_buf *recover;  // the statement loop that an error returns to
  Stmt *train;       // the first train block
} Parser;

// ------------------------------------------------------------------ tokens

// Invalid tokens were reported by the lexer and are skipped here. Once
// there are too many errors the text is treated as ended.
static Token lex(Parser *p) {
  for (;;) {
    Token token = lexer_next(&p->lexer);
    if (diag_error_count() > DIAG_MAX_ERRORS) token.kind = TOK_EOF;
    if (token.kind != TOK_INVALID) return token;
  }
}

static void advance(Parser *p) {
  switch (p->tok.kind) {
  case TOK_LPAREN:
  case TOK_LBRACKET: p->nesting++; break;
  case TOK_RPAREN:
  case TOK_RBRACKET:
    if (p->nesting > 0) p->nesting--;
    break;
  default: break;
  }
  p->prev_line = p->tok.loc.line;
  if (p->has_next) {
    p->tok = p->next;
    p->has_next = false;
  } else {
    p->tok = lex(p);
  }
}

static Token *peek(Parser *p) {
  if (!p->has_next) {
    p->next = lex(p);
    p->has_next = true;
  }
  return &p->next;
}

static bool at(Parser *p, TokenKind kind) { return p->tok.kind == kind; }

static bool is_word(const Token *token, const char *word) {
  return token->kind == TOK_IDENT && token->length == strlen(word) && !memcmp(token->start, word, token->length);
}

static bool at_word(Parser *p, const char *word) { return is_word(&p->tok, word); }

static bool at_assignment(Parser *p) { return at(p, TOK_IDENT) && peek(p)->kind == TOK_ASSIGN; }
// A statement that binds: NAME "=" or NAME "," (several names).
static bool at_binding(Parser *p) { return at_assignment(p) || (at(p, TOK_IDENT) && peek(p)->kind == TOK_COMMA); }

static bool at_any_word(Parser *p, const char *const *words) {
  for (; *words; words++)
    if (at_word(p, *words)) return true;
  return false;
}

static const char *const statement_words[] = {"param", "input", "net", "loss", "train", NULL};
static const char *const train_words[] = {"data", "test", "batch", "epochs", "seed", "validation", "patience", "step", NULL};

// A keyword that starts a top-level statement (`net = 3` assigns instead).
static bool at_statement_word(Parser *p) { return at_any_word(p, statement_words) && !at_assignment(p); }

// Such a keyword first on its line is taken for the next statement even
// where a name would do, so that `param a =` followed by `net ...` on the
// next line is an error at `net` rather than a confusing one later.
static bool at_new_statement(Parser *p) { return p->tok.loc.line > p->prev_line && at_statement_word(p); }

// Writes e.g. `identifier 'relu'`, `number '3'`, `'->'`, `end of file`.
static void describe(const Token *token, char *text, size_t size) {
  if (token->kind != TOK_IDENT && token->kind != TOK_NUMBER && token->kind != TOK_STRING) {
    snprintf(text, size, "%s", token_kind_name(token->kind));
    return;
  }
  enum { SHOWN = 32 };
  char quote = token->kind == TOK_STRING ? '"' : '\'';
  char shown[SHOWN + 1];
  size_t n = token->length < SHOWN ? token->length : SHOWN;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = token->start[i];
    shown[i] = c >= ' ' && c < 0x7f ? c : '?';
  }
  shown[n] = '\0';
  snprintf(text, size, "%s %c%s%s%c", token_kind_name(token->kind), quote, shown,
           token->length > SHOWN ? "..." : "", quote);
}

// ------------------------------------------------------------------ errors

__attribute__((noreturn)) static void bail(Parser *p) { longjmp(*p->recover, 1); }

__attribute__((noreturn, format(printf, 3, 4))) static void fail(Parser *p, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(loc, fmt, ap);
  va_end(ap);
  bail(p);
}

static void report_expected(Parser *p, const char *what) {
  char found[96];
  describe(&p->tok, found, sizeof found);
  diag_error(p->tok.loc, "expected %s but found %s", what, found);
}

__attribute__((noreturn)) static void fail_expected(Parser *p, const char *what) {
  report_expected(p, what);
  bail(p);
}

static void expect(Parser *p, TokenKind kind, const char *what) {
  if (!at(p, kind)) fail_expected(p, what ? what : token_kind_name(kind));
  advance(p);
}

// Expects the bracket that closes the one at `open`, and points there if not.
static void expect_closing(Parser *p, TokenKind kind, Loc open) {
  if (at(p, kind)) {
    advance(p);
    return;
  }
  report_expected(p, token_kind_name(kind));
  diag_note(open, "to match this %s", token_kind_name(kind - 1));  // TokenKind lists '(' just before ')'
  bail(p);
}

static void expect_word(Parser *p, const char *word) {
  if (!at_word(p, word)) {
    char what[32];
    snprintf(what, sizeof what, "'%s'", word);
    fail_expected(p, what);
  }
  advance(p);
}

static Ident expect_name(Parser *p, const char *what) {
  if (!at(p, TOK_IDENT) || at_new_statement(p)) fail_expected(p, what);
  Ident ident = {ast_strndup(p->tok.start, p->tok.length), p->tok.loc};
  advance(p);
  return ident;
}

// Skips tokens to where a statement of the context can start: at the same
// bracket depth as the statement, or on a new line for the keywords that
// open statements (a missing ')' must not hide the rest of the file).
static void synchronize(Parser *p, Context context) {
  int brackets = p->nesting, braces = 0;
  while (!at(p, TOK_EOF)) {
    bool level = brackets == 0 && braces == 0;
    bool line_start = p->tok.loc.line > p->prev_line;
    if (at(p, TOK_RBRACE) && context != IN_PROGRAM && braces == 0) return;
    if ((level || line_start) && at_statement_word(p)) return;
    if (context != IN_TRAIN && braces == 0 && (brackets == 0 || line_start) && at_assignment(p)) return;
    if (context == IN_NET_BODY && (level || line_start) && at_word(p, "return")) return;
    if (context == IN_PROGRAM && level && at_word(p, "return")) return;
    if (context == IN_TRAIN && (level || line_start) && at_any_word(p, train_words)) return;
    switch (p->tok.kind) {
    case TOK_LPAREN:
    case TOK_LBRACKET: brackets++; break;
    case TOK_RPAREN:
    case TOK_RBRACKET: brackets -= brackets > 0; break;
    case TOK_LBRACE: braces++; break;
    case TOK_RBRACE: braces -= braces > 0; break;
    default: break;
    }
    advance(p);
  }
}

// ------------------------------------------------------------ expressions

// Makes room in an arena array for item number `count`: the room is 4,
// then doubles whenever `count` reaches a power of two.
static void *push(void *items, int count, size_t size) {
  if (count > 0 && (count < 4 || (count & (count - 1)))) return items;
  void *grown = ast_alloc(size * (count ? 2 * count : 4));
  if (count) memcpy(grown, items, size * count);
  return grown;
}
// The value is computed first: it may report an error and longjmp away.
#define PUSH(array, count, value)                     \
  do {                                                \
    __typeof__(*(array)) item_ = (value);             \
    (array) = push((array), (count), sizeof *(array)); \
    (array)[(count)++] = item_;                       \
  } while (0)

static Expr *new_expr(ExprKind kind, Loc loc) {
  Expr *expr = ast_alloc(sizeof(Expr));
  expr->kind = kind;
  expr->loc = loc;
  return expr;
}

static Expr *name_expr(const Token *token) {
  Expr *expr = new_expr(EXPR_NAME, token->loc);
  expr->name = ast_strndup(token->start, token->length);
  return expr;
}

static void deeper(Parser *p, Loc loc) {
  if (++p->depth > MAX_DEPTH) fail(p, loc, "expression nested too deeply (more than %d levels)", MAX_DEPTH);
}

static Expr *expr(Parser *p);

// NAME "(" args ")", the current token being the '('.
static Expr *call(Parser *p, const Token *name) {
  Expr *call = name_expr(name);
  call->kind = EXPR_CALL;
  Loc open = p->tok.loc;
  advance(p);
  const char *keyword = NULL;  // the last keyword seen
  while (!at(p, TOK_RPAREN)) {
    Arg arg = {.loc = p->tok.loc};
    if (at_assignment(p)) {
      arg.keyword = keyword = ast_strndup(p->tok.start, p->tok.length);
      for (int i = 0; i < call->n_args; i++)
        if (call->args[i].keyword && !strcmp(call->args[i].keyword, keyword))
          diag_error(arg.loc, "keyword argument '%s' is given twice", keyword);
      advance(p);
      advance(p);
    } else if (keyword) {
      diag_error(arg.loc, "positional argument after keyword argument '%s'", keyword);
    }
    arg.value = expr(p);
    PUSH(call->args, call->n_args, arg);
    if (!at(p, TOK_COMMA)) break;
    advance(p);
  }
  expect_closing(p, TOK_RPAREN, open);
  return call;
}

// NET "." LAYER (a layer's name, as checkpoints write it), the current
// token being the '.'. Its place is the net's name.
static Expr *member(Parser *p, const Token *net) {
  Expr *member = new_expr(EXPR_MEMBER, net->loc);
  member->lhs = name_expr(net);
  advance(p);
  if (!at(p, TOK_IDENT)) fail_expected(p, "a layer's name after '.' (like encoder.dense_1)");
  member->rhs = name_expr(&p->tok);
  advance(p);
  size_t length = strlen(member->lhs->name) + 1 + strlen(member->rhs->name);
  char *name = ast_alloc(length + 1);
  snprintf(name, length + 1, "%s.%s", member->lhs->name, member->rhs->name);
  member->name = name;
  return member;
}

static Expr *list(Parser *p) {
  Expr *list = new_expr(EXPR_LIST, p->tok.loc);
  advance(p);
  while (!at(p, TOK_RBRACKET)) {
    PUSH(list->items, list->n_items, expr(p));
    if (!at(p, TOK_COMMA)) break;
    advance(p);
  }
  expect_closing(p, TOK_RBRACKET, list->loc);
  return list;
}

static Expr *primary(Parser *p) {
  Token token = p->tok;
  switch (token.kind) {
  case TOK_NUMBER: {
    Expr *number = new_expr(EXPR_NUMBER, token.loc);
    number->number = token.number;
    advance(p);
    return number;
  }
  case TOK_STRING: {
    Expr *string = name_expr(&token);
    string->kind = EXPR_STRING;
    advance(p);
    return string;
  }
  case TOK_IDENT:
    if (at_new_statement(p)) fail_expected(p, "an expression");
    advance(p);
    if (at(p, TOK_DOT)) return member(p, &token);
    return at(p, TOK_LPAREN) ? call(p, &token) : name_expr(&token);
  case TOK_LBRACKET: return list(p);
  case TOK_LPAREN: {
    advance(p);
    Expr *inner = expr(p);
    expect_closing(p, TOK_RPAREN, token.loc);
    return inner;
  }
  default: fail_expected(p, "an expression");
  }
}

static Expr *unary(Parser *p) {
  if (!at(p, TOK_MINUS)) {
    Expr *operand = primary(p);
    if (at(p, TOK_LPAREN)) fail(p, p->tok.loc, "only a name can be called");
    return operand;
  }
  Loc loc = p->tok.loc;
  advance(p);
  deeper(p, loc);
  Expr *operand = unary(p);
  p->depth--;
  if (operand->kind == EXPR_NUMBER) {  // -3 is a number
    operand->number = -operand->number;
    operand->loc = loc;
    return operand;
  }
  Expr *negate = new_expr(EXPR_NEGATE, loc);
  negate->lhs = operand;
  return negate;
}

// One level of left-associative binary operators. Each operator adds a
// level to the tree, so it counts against MAX_DEPTH too.
static Expr *binary(Parser *p, Expr *(*operand)(Parser *), TokenKind op1, TokenKind op2) {
  int depth = p->depth;
  Expr *lhs = operand(p);
  while (at(p, op1) || at(p, op2)) {
    Expr *node = new_expr(EXPR_BINARY, p->tok.loc);
    node->op = *p->tok.start;  // the token is the operator's one character
    deeper(p, node->loc);
    advance(p);
    node->lhs = lhs;
    node->rhs = operand(p);
    lhs = node;
  }
  p->depth = depth;
  return lhs;
}

static Expr *product(Parser *p) { return binary(p, unary, TOK_STAR, TOK_SLASH); }

static Expr *expr(Parser *p) {
  deeper(p, p->tok.loc);
  Expr *result = binary(p, product, TOK_PLUS, TOK_MINUS);
  p->depth--;
  return result;
}

// The expression of a statement, which must not go on with '->'.
static Expr *value(Parser *p) {
  Expr *result = expr(p);
  if (at(p, TOK_ARROW)) fail(p, p->tok.loc, "unexpected '->': pipelines only define nets (net NAME = a -> b)");
  return result;
}

// ------------------------------------------------------------- statements

static Stmt *new_stmt(StmtKind kind, Loc loc) {
  Stmt *stmt = ast_alloc(sizeof(Stmt));
  stmt->kind = kind;
  stmt->loc = loc;
  return stmt;
}

// NAME "=" expr, as STMT_ASSIGN or after `loss`/`param`; an assignment may
// bind several names: NAME "," NAME ... "=" expr.
static Stmt *assignment(Parser *p, StmtKind kind, Loc loc, const char *what) {
  Stmt *stmt = new_stmt(kind, loc);
  stmt->name = expect_name(p, what);
  if (kind == STMT_ASSIGN && at(p, TOK_COMMA)) {
    PUSH(stmt->names, stmt->n_names, stmt->name);
    while (at(p, TOK_COMMA)) {
      advance(p);
      PUSH(stmt->names, stmt->n_names, expect_name(p, "a name after ','"));
    }
  }
  expect(p, TOK_ASSIGN, NULL);
  stmt->value = value(p);
  return stmt;
}

static Expr *pipeline(Parser *p) {
  Expr *pipeline = new_expr(EXPR_PIPELINE, p->tok.loc);
  for (;;) {
    if (!at(p, TOK_IDENT) || at_new_statement(p)) fail_expected(p, "a layer (a call like dense(128) or a net's name)");
    Token name = p->tok;
    advance(p);
    PUSH(pipeline->items, pipeline->n_items, at(p, TOK_LPAREN) ? call(p, &name) : name_expr(&name));
    if (!at(p, TOK_ARROW)) return pipeline;
    advance(p);
  }
}

static bool has_return(const Stmt *net) { return net->n_body > 0 && net->body[net->n_body - 1]->kind == STMT_RETURN; }

static void body_statement(Parser *p, Stmt *net) {
  if (has_return(net)) diag_error(p->tok.loc, "'return' must be the last statement of a net body");
  if (at_word(p, "return") && !at_assignment(p)) {
    Stmt *stmt = new_stmt(STMT_RETURN, p->tok.loc);
    advance(p);
    stmt->value = value(p);
    if (at(p, TOK_COMMA)) {  // several results
      PUSH(stmt->values, stmt->n_values, stmt->value);
      while (at(p, TOK_COMMA)) {
        advance(p);
        PUSH(stmt->values, stmt->n_values, value(p));
      }
    }
    PUSH(net->body, net->n_body, stmt);
  } else if (at_binding(p)) {
    PUSH(net->body, net->n_body, assignment(p, STMT_ASSIGN, p->tok.loc, NULL));
  } else {
    fail_expected(p, "'NAME = ...' or 'return' in a net body");
  }
}

static void train_setting(Parser *p, Stmt *train) {
  TrainSetting setting = {{ast_strndup(p->tok.start, p->tok.length), p->tok.loc}, NULL};
  for (int i = 0; i < train->n_settings; i++) {
    if (strcmp(train->settings[i].key.name, setting.key.name)) continue;
    diag_error(setting.key.loc, "'%s' is set twice in the train block", setting.key.name);
    diag_note(train->settings[i].key.loc, "first set here");
  }
  advance(p);
  bool file = !strcmp(setting.key.name, "data") || !strcmp(setting.key.name, "test");
  if (file || (!strcmp(setting.key.name, "validation") && at(p, TOK_STRING))) {
    if (!at(p, TOK_STRING)) fail_expected(p, "a data set in quotes (\"fashion-mnist:train\" or a path)");
    setting.value = name_expr(&p->tok);
    setting.value->kind = EXPR_STRING;
    advance(p);
  } else {
    setting.value = value(p);
  }
  PUSH(train->settings, train->n_settings, setting);
}

static void train_step(Parser *p, Stmt *train) {
  TrainStep step = {.loc = p->tok.loc};
  advance(p);
  expect_word(p, "minimize");
  step.loss = expect_name(p, "the name of a loss");
  expect_word(p, "over");
  for (;;) {
    if (at_word(p, "with")) fail_expected(p, "a net's name");
    PUSH(step.nets, step.n_nets, expect_name(p, "a net's name"));
    if (!at(p, TOK_COMMA)) break;
    advance(p);
  }
  expect_word(p, "with");
  if (!at(p, TOK_IDENT) || peek(p)->kind != TOK_LPAREN) fail_expected(p, "an optimizer call like adam(lr=0.001)");
  Token name = p->tok;
  advance(p);
  step.optimizer = call(p, &name);
  PUSH(train->steps, train->n_steps, step);
}

static void train_item(Parser *p, Stmt *train) {
  if (at_word(p, "step"))
    train_step(p, train);
  else if (at_any_word(p, train_words))
    train_setting(p, train);
  else
    fail_expected(p, "a train setting (data, test, batch, epochs, seed, validation, patience) or 'step'");
}

// The statements of a `{ ... }` block (a net body or the train block), each
// with its own error recovery. A statement word of the program ends a block
// left open; that is an error unless the block already reported one.
static void block(Parser *p, Stmt *stmt, Context context, const char *what) {
  if (!at(p, TOK_LBRACE)) fail_expected(p, context == IN_TRAIN ? "'{' after 'train'" : "'{' to start the net body");
  Loc open = p->tok.loc;
  advance(p);
  int errors = diag_error_count();
  jmp_buf recover, *outer = p->recover;
  p->recover = &recover;
  while (!at(p, TOK_RBRACE) && !at(p, TOK_EOF)) {
    const char *volatile start = p->tok.start;
    if (setjmp(recover)) {
      synchronize(p, context);
      if (p->tok.start == start) advance(p);  // a statement must not fail without consuming a token
      continue;
    }
    if (at_statement_word(p)) break;
    p->nesting = p->depth = 0;
    if (context == IN_TRAIN)
      train_item(p, stmt);
    else
      body_statement(p, stmt);
  }
  p->recover = outer;
  if (at(p, TOK_RBRACE)) {
    if (context == IN_NET_BODY && !has_return(stmt) && diag_error_count() == errors)
      diag_error(p->tok.loc, "a net body must end with 'return'");
    advance(p);
  } else if (diag_error_count() == errors) {
    char what_closes[64];
    snprintf(what_closes, sizeof what_closes, "'}' to close %s", what);
    report_expected(p, what_closes);
    diag_note(open, "to match this '{'");
  }
}

static Stmt *net(Parser *p) {
  Stmt *net = new_stmt(STMT_NET, p->tok.loc);
  advance(p);
  net->name = expect_name(p, "the net's name");
  if (at(p, TOK_ASSIGN)) {
    advance(p);
    net->value = pipeline(p);
    return net;
  }
  if (!at(p, TOK_LPAREN)) fail_expected(p, "'=' or '(' after the net's name");
  Loc open = p->tok.loc;
  advance(p);
  for (;;) {
    PUSH(net->net_params, net->n_net_params, expect_name(p, "the name of the net's input"));
    if (!at(p, TOK_COMMA)) break;
    advance(p);
  }
  expect_closing(p, TOK_RPAREN, open);
  block(p, net, IN_NET_BODY, "the net body");
  return net;
}

static Stmt *train(Parser *p) {
  Stmt *train = new_stmt(STMT_TRAIN, p->tok.loc);
  if (p->train) {
    diag_error(train->loc, "only one train block is allowed");
    diag_note(p->train->loc, "the first train block is here");
  } else {
    p->train = train;
  }
  advance(p);
  block(p, train, IN_TRAIN, "the train block");
  return train;
}

static Stmt *statement(Parser *p) {
  Loc loc = p->tok.loc;
  if (at_binding(p)) return assignment(p, STMT_ASSIGN, loc, NULL);
  if (at_word(p, "param")) {
    advance(p);
    return assignment(p, STMT_PARAM, loc, "a name after 'param'");
  }
  if (at_word(p, "loss")) {
    advance(p);
    return assignment(p, STMT_LOSS, loc, "a name after 'loss'");
  }
  if (at_word(p, "input")) {
    advance(p);
    Stmt *input = new_stmt(STMT_INPUT, loc);
    input->name = expect_name(p, "a name after 'input'");
    expect(p, TOK_COLON, "':' after the input's name");
    if (!at(p, TOK_LBRACKET)) fail_expected(p, "the input's shape, like [784]");
    input->value = list(p);
    return input;
  }
  if (at_word(p, "net")) return net(p);
  if (at_word(p, "train")) return train(p);
  if (at_word(p, "return")) {
    advance(p);
    fail(p, loc, "'return' is only allowed at the end of a net body");
  }
  fail_expected(p, "a statement (param, input, net, loss, train or NAME = ...)");
}

Program *parse_program(const Source *source) {
  if (!source) return NULL;
  Parser *p = ast_alloc(sizeof(Parser));  // not a local: it changes between setjmp and longjmp
  Program *program = ast_alloc(sizeof(Program));
  program->source = source;
  lexer_init(&p->lexer, source);
  p->tok = lex(p);
  jmp_buf recover;
  p->recover = &recover;
  while (!at(p, TOK_EOF)) {
    const char *volatile start = p->tok.start;
    if (setjmp(recover)) {
      synchronize(p, IN_PROGRAM);
      if (p->tok.start == start) advance(p);  // a statement must not fail without consuming a token
      continue;
    }
    p->nesting = p->depth = 0;
    PUSH(program->stmts, program->n_stmts, statement(p));
  }
  return program;
}
