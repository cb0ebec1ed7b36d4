package parser

import (
	"io"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// The token types of a pfile. Comments, blanks and continuations are not
// tokens: the lexer skips them.
const (
	tokEOL lexer.TokenType = -(iota + 2)
	tokString
	tokOpen
	tokClose
	tokEq
	tokPath
	tokWord
	tokFields
	tokBlock
)

// pfileLexer is a hand-written lexer for participle: a pfile is scanned
// in one pass, about ten times faster than the equivalent regexp rules.
//
//   - Newlines are tokens (a statement is a line).
//   - A comment is a # at the start of a word and runs to the end of the
//     line. A comment line that ends in ':' continues onto the next line
//     when that line is indented and starts with a character no statement
//     can start with (the guide's https sample breaks its template comment
//     so: "...:<host>:" then "  <timeout>:<html path>").
//   - A backslash at the end of a line joins the next line.
//   - A block, from '{' to its '}', is one Block token: blockBody parses
//     its inside with a lexer of its own (blockLexer), so the thousands of
//     block lines of a large pfile are not stored as participle tokens.
//   - Inside a block a word is a Fields token, and a field list that ends
//     in ':' continues on the next line (the guide's PS_EXEC sample breaks
//     after "lib_bi_webserv.so:").
//   - A word is anything up to a blank or one of `"={}`; it may contain '#';
//     a backslash takes the next character into the word. A word that
//     starts with '/' is a Path.
type pfileDefinition struct{}

// Symbols names the token types for the grammar. It builds the map on each
// call: the grammar is built during package initialisation, before a
// package-level map would be.
func (pfileDefinition) Symbols() map[string]lexer.TokenType {
	return map[string]lexer.TokenType{
		"EOF":    lexer.EOF,
		"EOL":    tokEOL,
		"String": tokString,
		"Open":   tokOpen,
		"Close":  tokClose,
		"Eq":     tokEq,
		"Path":   tokPath,
		"Word":   tokWord,
		"Fields": tokFields,
		"Block":  tokBlock,
	}
}

func (d pfileDefinition) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return d.LexBytes(filename, b)
}

func (pfileDefinition) LexBytes(filename string, b []byte) (lexer.Lexer, error) {
	return &pfileLexer{src: string(b), pos: lexer.Position{Filename: filename, Line: 1, Column: 1}}, nil
}

func (d pfileDefinition) LexString(filename string, s string) (lexer.Lexer, error) {
	return &pfileLexer{src: s, pos: lexer.Position{Filename: filename, Line: 1, Column: 1}}, nil
}

type pfileLexer struct {
	src     string
	pos     lexer.Position // of src[pos.Offset]
	inBlock bool
}

// advance moves the position over n bytes.
func (l *pfileLexer) advance(n int) {
	s := l.src[l.pos.Offset : l.pos.Offset+n]
	line, col := l.pos.Line, l.pos.Column
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\n':
			line++
			col = 1
			i++
		case c < utf8.RuneSelf:
			col++
			i++
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			col++
			i += size
		}
	}
	l.pos.Line, l.pos.Column = line, col
	l.pos.Offset += n
}

func (l *pfileLexer) token(t lexer.TokenType, n int) lexer.Token {
	tok := lexer.Token{Type: t, Value: l.src[l.pos.Offset : l.pos.Offset+n], Pos: l.pos}
	l.advance(n)
	return tok
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' }

func isSpace(c byte) bool { return isBlank(c) || c == '\n' }

// endsWord reports whether c ends a word.
func endsWord(c byte) bool {
	return isSpace(c) || c == '"' || c == '=' || c == '{' || c == '}'
}

// Next returns the next token.
func (l *pfileLexer) Next() (lexer.Token, error) {
	for {
		rest := l.src[l.pos.Offset:]
		if rest == "" {
			return lexer.Token{Type: lexer.EOF, Pos: l.pos}, nil
		}
		c := rest[0]
		switch {
		case c == '\n':
			return l.token(tokEOL, 1), nil
		case c == '\r' && len(rest) > 1 && rest[1] == '\n':
			return l.token(tokEOL, 2), nil
		case isBlank(c):
			l.advance(1)
		case c == '#':
			l.advance(commentLen(rest))
		case c == '\\' && lineBreakAfterBlanks(rest[1:]) > 0:
			l.advance(1 + lineBreakAfterBlanks(rest[1:]))
		case c == '"':
			n, ok := stringLen(rest)
			if !ok {
				return lexer.Token{}, &lexer.Error{Msg: "unterminated quoted string", Pos: l.pos}
			}
			return l.token(tokString, n), nil
		case c == '{' && !l.inBlock:
			end, err := l.blockEnd()
			if err != nil {
				return lexer.Token{}, err
			}
			tok := lexer.Token{Type: tokBlock, Value: l.src[l.pos.Offset:end.Offset], Pos: l.pos}
			l.pos = end
			return tok, nil
		case c == '{':
			return l.token(tokOpen, 1), nil
		case c == '}':
			return l.token(tokClose, 1), nil
		case c == '=':
			return l.token(tokEq, 1), nil
		case l.inBlock:
			return l.token(tokFields, fieldsLen(rest)), nil
		case c == '/':
			return l.token(tokPath, wordLen(rest)), nil
		default:
			return l.token(tokWord, wordLen(rest)), nil
		}
	}
}

// blockEnd is the position just after the '}' of the block that starts
// at the '{' under the cursor.
func (l *pfileLexer) blockEnd() (lexer.Position, error) {
	in := blockLexer(l.src, l.pos)
	for {
		t, err := in.Next()
		switch {
		case err != nil:
			return lexer.Position{}, err
		case t.EOF():
			return lexer.Position{}, &unclosedBlockError{pos: l.pos}
		case t.Type == tokClose:
			return in.pos, nil
		}
	}
}

// blockLexer returns a lexer for the inside of the block whose '{' is at
// pos in src; it returns Close at the block's '}'.
func blockLexer(src string, pos lexer.Position) pfileLexer {
	l := pfileLexer{src: src, pos: pos, inBlock: true}
	l.advance(1)
	return l
}

// wordLen is the length of the word at the start of s.
func wordLen(s string) int {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '\\' && i+1 < len(s) && !isSpace(s[i+1]) {
			i += 2
			continue
		}
		if endsWord(c) || c == '\\' {
			break
		}
		i++
	}
	if i == 0 {
		// A lone backslash before a blank: take it so the lexer moves on.
		i = 1
	}
	return i
}

// fieldsLen is the length of a block entry's field list at the start of s,
// following lines that end in ':'.
func fieldsLen(s string) int {
	n := wordLen(s)
	for s[n-1] == ':' {
		br := lineBreakAfterBlanks(s[n:])
		if br == 0 {
			break
		}
		j := n + br
		for j < len(s) && isBlank(s[j]) {
			j++
		}
		if j >= len(s) || endsWord(s[j]) || s[j] == '#' {
			break
		}
		n = j + wordLen(s[j:])
	}
	return n
}

// lineBreakAfterBlanks returns the length of blanks and a newline at the
// start of s, or 0 when s does not start with blanks then a newline.
func lineBreakAfterBlanks(s string) int {
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\n':
			return i + 1
		case !isBlank(s[i]):
			return 0
		}
	}
	return 0
}

// stringLen is the length of the quoted string at the start of s; ok is
// false when it is not closed on its line.
func stringLen(s string) (int, bool) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && s[i+1] != '\n' {
				i++
			}
		case '"':
			return i + 1, true
		case '\n':
			return 0, false
		}
	}
	return 0, false
}

// commentLen is the length of the comment at the start of s, with the
// continuation lines it takes.
func commentLen(s string) int {
	n := 0
	for {
		eol := n
		for eol < len(s) && s[eol] != '\n' {
			eol++
		}
		end := eol
		for end > n && isBlank(s[end-1]) {
			end--
		}
		if eol >= len(s) || end == n || s[end-1] != ':' {
			return eol
		}
		// The next line continues the comment when it is indented and its
		// first character cannot start a statement.
		j := eol + 1
		k := j
		for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
			k++
		}
		if k == j || k >= len(s) || !continuesComment(s[k]) {
			return eol
		}
		n = j
	}
}

func continuesComment(c byte) bool {
	switch {
	case isSpace(c), c == '/', c == '"', c == '_', c == '}', c == '{', c == '#', c == '\\':
		return false
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		return false
	}
	return true
}

// unclosedBlockError is a '{' without its '}'. Parse blanks everything
// from the '{' on, so that the block's lines are not reported again as
// statements of their own.
type unclosedBlockError struct{ pos lexer.Position }

func (e *unclosedBlockError) Error() string { return e.pos.String() + ": " + e.Message() }
func (e *unclosedBlockError) Message() string {
	return "block not closed with '}': the rest of the file is not read"
}
func (e *unclosedBlockError) Position() lexer.Position { return e.pos }
