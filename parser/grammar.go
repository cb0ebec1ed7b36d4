package parser

import (
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The grammar is LL(1): a statement is a line of items, or an item and a
// block. What a line means (a parameter, a process entry with its options,
// a block entry) is decided by convert from its first token, which keeps
// the grammar small and the parse fast (BenchmarkLoad1000).
//
//	file      = EOL* ( stmt EOL+ )*                 (body.Parse)
//	stmt      = item tail
//	tail      = block? item*                        (tail.Parse)
//	block     = "{" EOL* ( item+ EOL+ )* "}"   (one Block token; blockBody.Parse)
//	item      = value ( Eq value )?          (item.Parse)
//	value     = Word | Path | String | Fields
type ast struct {
	Body body `parser:"@@"`
}

// body is the file's statements: EOL* ( stmt EOL+ )*. It parses itself
// (participle.Parseable) so that the thousands of statements of a large
// pfile cost no branch, deferred capture or reflection each; it fails
// exactly where participle's generic repetition would (the token after a
// statement that is not an end of line, or a token no statement can start
// with).
type body struct {
	Stmts []stmt
}

// Parse implements participle.Parseable.
func (b *body) Parse(lex *lexer.PeekingLexer) error {
	skipEOL := func() {
		for lex.Peek().Type == tokEOL {
			lex.Next()
		}
	}
	skipEOL()
	b.Stmts = make([]stmt, 0, countAhead(lex, func(t *lexer.Token) bool { return t.Type == tokEOL }))
	for isValue(lex.Peek().Type) {
		var s stmt
		if err := s.First.parse(peeking{lex}); err != nil {
			return err
		}
		if err := s.Tail.Parse(lex); err != nil {
			return err
		}
		if t := lex.Peek(); t.Type != tokEOL {
			return &participle.UnexpectedTokenError{Unexpected: *t}
		}
		b.Stmts = append(b.Stmts, s)
		skipEOL()
	}
	if t := lex.Peek(); !t.EOF() {
		return &participle.UnexpectedTokenError{Unexpected: *t}
	}
	return nil
}

// countAhead counts the tokens from the cursor to the end of the file for
// which match is true, without moving the cursor: it sizes a slice that
// would otherwise grow many times.
func countAhead(lex *lexer.PeekingLexer, match func(*lexer.Token) bool) int {
	cp := lex.MakeCheckpoint()
	n := 0
	for t := lex.Next(); !t.EOF(); t = lex.Next() {
		if match(t) {
			n++
		}
	}
	lex.LoadCheckpoint(cp)
	return n
}

type stmt struct {
	First item
	Tail  tail
}

// tail is what follows a statement's first item: a block, then items.
// It parses itself (participle.Parseable) so that the optional block and
// the repeated items cost no lookahead branches.
type tail struct {
	Block *blockBody
	Rest  []item
}

// Parse implements participle.Parseable: block? item*.
func (t *tail) Parse(lex *lexer.PeekingLexer) error {
	if lex.Peek().Type == tokBlock {
		t.Block = &blockBody{}
		if err := t.Block.Parse(lex); err != nil {
			return err
		}
	}
	if isValue(lex.Peek().Type) {
		t.Rest = make([]item, 0, valuesAhead(lex))
	}
	for isValue(lex.Peek().Type) {
		var it item
		if err := it.parse(peeking{lex}); err != nil {
			return err
		}
		t.Rest = append(t.Rest, it)
	}
	return nil
}

// valuesAhead counts the values from the cursor to the next token that is
// neither a value nor '=', without moving the cursor: at least as many as
// the items there.
func valuesAhead(lex *lexer.PeekingLexer) int {
	cp := lex.MakeCheckpoint()
	n := 0
	for t := lex.Peek(); isValue(t.Type) || t.Type == tokEq; t = lex.Peek() {
		if isValue(t.Type) {
			n++
		}
		lex.Next()
	}
	lex.LoadCheckpoint(cp)
	return n
}

// blockBody is a block: the Block token from '{' to '}', whose inside is
// EOL* ( item+ EOL+ )* Close. It parses itself (participle.Parseable)
// with a lexer of its own over the token's text: a pfile is mostly block
// lines, and participle's generic machinery would allocate for each.
type blockBody struct {
	Lines []blockLine
}

type blockLine struct {
	Items []item
}

// Parse implements participle.Parseable.
func (b *blockBody) Parse(lex *lexer.PeekingLexer) error {
	t := lex.Peek()
	if t.Type != tokBlock {
		return participle.NextMatch
	}
	lex.Next()
	// A block has no more lines than line ends.
	b.Lines = make([]blockLine, 0, strings.Count(t.Value, "\n")+1)
	in := &tokens{lex: blockLexer(t.Value, lexer.Position{Filename: t.Pos.Filename, Line: t.Pos.Line, Column: t.Pos.Column})}
	for {
		t, err := in.peek()
		if err != nil {
			return err
		}
		switch {
		case t.Type == tokEOL:
			in.next()
		case t.Type == tokClose:
			return nil
		case isValue(t.Type):
			line := blockLine{Items: make([]item, 0, 2)}
			for {
				t, err := in.peek()
				if err != nil {
					return err
				}
				if !isValue(t.Type) {
					break
				}
				var it item
				if err := it.parse(in); err != nil {
					return err
				}
				line.Items = append(line.Items, it)
			}
			if n, _ := in.peek(); n.Type != tokEOL && n.Type != tokClose {
				return &participle.UnexpectedTokenError{Unexpected: n}
			}
			b.Lines = append(b.Lines, line)
		default:
			return &participle.UnexpectedTokenError{Unexpected: t}
		}
	}
}

// tokens gives one token of lookahead over a lexer.
type tokens struct {
	lex    pfileLexer
	ahead  lexer.Token
	peeked bool
	err    error
}

func (ts *tokens) peek() (lexer.Token, error) {
	if !ts.peeked {
		ts.ahead, ts.err = ts.lex.Next()
		ts.peeked = true
	}
	return ts.ahead, ts.err
}

func (ts *tokens) next() lexer.Token {
	t, _ := ts.peek()
	ts.peeked = false
	return t
}

// item is a value, or name=value (also written name = value). It parses
// itself (participle.Parseable): items are most of a pfile's tokens, and
// the generic machinery would branch and allocate for each optional "=".
type item struct {
	Key   token
	Value *token
}

// token is a value's text and where it starts: line and column only (the
// file is the converter's), kept small as a pfile has many.
type token struct {
	Text      string
	Line, Col int32
}

func newToken(t lexer.Token) token {
	return token{Text: t.Value, Line: int32(t.Pos.Line), Col: int32(t.Pos.Column)}
}

// pos is where the token starts.
func (t token) pos() lexer.Position { return lexer.Position{Line: int(t.Line), Column: int(t.Col)} }

func isValue(t lexer.TokenType) bool {
	return t == tokWord || t == tokPath || t == tokString || t == tokFields
}

// Parse implements participle.Parseable: value ( Eq value )?.
func (it *item) Parse(lex *lexer.PeekingLexer) error {
	if !isValue(lex.Peek().Type) {
		return participle.NextMatch
	}
	return it.parse(peeking{lex})
}

// tokenSource is what item.parse reads from: participle's PeekingLexer
// at the top level, a block's own lexer inside blocks.
type tokenSource interface {
	peek() (lexer.Token, error)
	next() lexer.Token
}

type peeking struct{ lex *lexer.PeekingLexer }

func (p peeking) peek() (lexer.Token, error) { return *p.lex.Peek(), nil }
func (p peeking) next() lexer.Token          { return *p.lex.Next() }

func (it *item) parse(in tokenSource) error {
	t := in.next()
	it.Key = newToken(t)
	if n, err := in.peek(); err != nil || n.Type != tokEq {
		return err
	}
	in.next()
	v, err := in.peek()
	if err != nil {
		return err
	}
	if !isValue(v.Type) {
		return &participle.UnexpectedTokenError{Unexpected: v}
	}
	in.next()
	value := newToken(v)
	it.Value = &value
	return nil
}

var grammar = participle.MustBuild[ast](
	participle.Lexer(pfileDefinition{}),
)
