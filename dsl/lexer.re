// lexer.re — the tokens of `.ae` files; re2c turns this into build/dsl/lexer.c.
//
// The text is NUL-terminated but may hold NULs of its own, so the lexer uses
// re2c's sentinel with bounds checks: a NUL is the end only at YYLIMIT.
// Newlines are plain whitespace (statements need no terminator); the lexer
// only counts them to give every token an exact line and byte column.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dsl.h"

void lexer_init(Lexer *lexer, const Source *source) {
  lexer->source = source;
  lexer->cursor = source->text;
  lexer->line_start = source->text;
  lexer->line = 1;
}

const char *token_kind_name(TokenKind kind) {
  static const char *names[] = {
      [TOK_EOF] = "end of file", [TOK_IDENT] = "identifier", [TOK_NUMBER] = "number",
      [TOK_STRING] = "string",   [TOK_LPAREN] = "'('",       [TOK_RPAREN] = "')'",
      [TOK_LBRACE] = "'{'",      [TOK_RBRACE] = "'}'",       [TOK_LBRACKET] = "'['",
      [TOK_RBRACKET] = "']'",    [TOK_COMMA] = "','",        [TOK_COLON] = "':'",
      [TOK_ASSIGN] = "'='",      [TOK_ARROW] = "'->'",       [TOK_PLUS] = "'+'",
      [TOK_MINUS] = "'-'",       [TOK_STAR] = "'*'",         [TOK_SLASH] = "'/'",
      [TOK_DOT] = "'.'",
      [TOK_INVALID] = "invalid character",
  };
  return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "token";
}

static Token make_token(Lexer *lexer, TokenKind kind, const unsigned char *start, const unsigned char *end) {
  Token token = {0};
  token.kind = kind;
  token.loc = (Loc){lexer->source, lexer->line, (int)((const char *)start - lexer->line_start) + 1};
  token.start = (const char *)start;
  token.length = end - start;
  lexer->cursor = (const char *)end;
  return token;
}

static Token invalid_character(Token token) {
  unsigned char c = *token.start;
  if (c > ' ' && c < 0x7f)
    diag_error(token.loc, "invalid character '%c'", c);
  else
    diag_error(token.loc, "invalid character '\\x%02x'", c);
  return token;
}

// A run of non-ASCII bytes (one UTF-8 character, say) is one error.
static Token non_ascii(Token token) {
  char bytes[4 * 8 + 4] = "", *end = bytes;
  for (size_t i = 0; i < token.length && i < 8; i++)
    end += sprintf(end, "\\x%02x", (unsigned char)token.start[i]);
  if (token.length > 8) strcpy(end, "...");
  diag_error(token.loc, "invalid character '%s' (only ASCII is allowed outside strings and comments)", bytes);
  return token;
}

static Token number(Token token) {
  char *copy = strndup(token.start, token.length);
  if (!copy) abort();
  token.number = strtod(copy, NULL);
  if (isinf(token.number)) diag_error(token.loc, "number '%.40s' is too large", copy);
  free(copy);
  return token;
}

// A string token's text is its contents, without the quotes; its place is
// the opening quote's.
static Token string(Token token, bool closed) {
  token.start++;
  token.length -= closed ? 2 : 1;
  if (!closed) diag_error(token.loc, "unterminated string");
  return token;
}

Token lexer_next(Lexer *lexer) {
  const unsigned char *YYCURSOR = (const unsigned char *)lexer->cursor;
  const unsigned char *YYLIMIT = (const unsigned char *)lexer->source->text + lexer->source->length;
  const unsigned char *YYMARKER = YYCURSOR;
  for (;;) {
    const unsigned char *start = YYCURSOR;
#define TOKEN(kind) make_token(lexer, kind, start, YYCURSOR)
    /*!re2c
      re2c:yyfill:enable = 0;
      re2c:eof = 0;
      re2c:define:YYCTYPE = "unsigned char";

      digits   = [0-9]+;
      exponent = [eE] [+-]? digits;
      number   = (digits ("." digits)? | "." digits) exponent?;
      ident    = [A-Za-z_] [A-Za-z0-9_]*;

      $              { return TOKEN(TOK_EOF); }
      "\n"           { lexer->line++; lexer->line_start = (const char *)YYCURSOR; continue; }
      [ \t\r]+       { continue; }
      "#" [^\n]*     { continue; }

      number         { return number(TOKEN(TOK_NUMBER)); }
      number [A-Za-z0-9_.]+ {  // reported, then passed on as a number to spare the parser
        Token token = TOKEN(TOK_NUMBER);
        diag_error(token.loc, "invalid number '%.*s'", (int)(token.length > 40 ? 40 : token.length), token.start);
        return token;
      }
      ident          { return TOKEN(TOK_IDENT); }
      ["] [^"\n\x00]* ["] { return string(TOKEN(TOK_STRING), true); }
      ["] [^"\n\x00]*     { return string(TOKEN(TOK_STRING), false); }

      "("  { return TOKEN(TOK_LPAREN); }
      ")"  { return TOKEN(TOK_RPAREN); }
      "{"  { return TOKEN(TOK_LBRACE); }
      "}"  { return TOKEN(TOK_RBRACE); }
      "["  { return TOKEN(TOK_LBRACKET); }
      "]"  { return TOKEN(TOK_RBRACKET); }
      ","  { return TOKEN(TOK_COMMA); }
      ":"  { return TOKEN(TOK_COLON); }
      "="  { return TOKEN(TOK_ASSIGN); }
      "->" { return TOKEN(TOK_ARROW); }
      "+"  { return TOKEN(TOK_PLUS); }
      "-"  { return TOKEN(TOK_MINUS); }
      "*"  { return TOKEN(TOK_STAR); }
      "/"  { return TOKEN(TOK_SLASH); }
      "."  { return TOKEN(TOK_DOT); }

      [\x80-\xff]+ { return non_ascii(TOKEN(TOK_INVALID)); }
      *    { return invalid_character(TOKEN(TOK_INVALID)); }
    */
#undef TOKEN
  }
}
