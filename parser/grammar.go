package parser

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The lexer. Newlines are tokens (a statement is a line); comments,
// blanks and continuations are elided.
//
//   - A comment is a # at the start of a word; it runs to the end of the
//     line. A comment line that ends in ':' continues onto the next line
//     when that line is indented and starts with a character no statement
//     can start with (the guide's https sample breaks its template
//     comment so: "...:<host>:" then "  <timeout>:<html path>").
//   - A backslash at the end of a line joins the next line.
//   - Inside a block, an entry field list that ends in ':' continues on the
//     next line (the guide's PS_EXEC sample breaks after "lib_bi_webserv.so:").
var pfileLexer = lexer.MustStateful(lexer.Rules{
	"Root": {
		{Name: "Comment", Pattern: commentPattern},
		{Name: "Continue", Pattern: `\\[ \t]*\r?\n`},
		{Name: "EOL", Pattern: `\r?\n`},
		{Name: "Whitespace", Pattern: `[ \t\r\f\v]+`},
		{Name: "String", Pattern: `"(?:\\.|[^"\\\r\n])*"`},
		{Name: "Open", Pattern: `\{`, Action: lexer.Push("Block")},
		{Name: "Close", Pattern: `\}`},
		{Name: "Eq", Pattern: `=`},
		{Name: "Path", Pattern: `/` + wordRest},
		{Name: "Word", Pattern: wordFirst + wordRest},
	},
	"Block": {
		{Name: "Comment", Pattern: commentPattern},
		{Name: "Continue", Pattern: `\\[ \t]*\r?\n`},
		{Name: "EOL", Pattern: `\r?\n`},
		{Name: "Whitespace", Pattern: `[ \t\r\f\v]+`},
		{Name: "String", Pattern: `"(?:\\.|[^"\\\r\n])*"`},
		{Name: "Close", Pattern: `\}`, Action: lexer.Pop()},
		{Name: "Open", Pattern: `\{`},
		{Name: "Eq", Pattern: `=`},
		{Name: "Fields", Pattern: `(?:` + wordFirst + wordRest + `:[ \t]*\r?\n[ \t]*)*` + wordFirst + wordRest},
	},
})

const (
	commentPattern = `#(?:[^\r\n]*:[ \t]*\r?\n[ \t]+[^\s/"_}{#A-Za-z\\])*[^\r\n]*`
	wordFirst      = `(?:[^\s"={}#\\]|\\\S)`
	wordRest       = `(?:[^\s"={}\\]|\\\S)*`
)

// ast is the grammar's view of a pfile: lines of statements.
type ast struct {
	Stmts []*stmt `parser:"EOL* ( @@ EOL+ )*"`
}

type stmt struct {
	Block   *blockStmt   `parser:"  @@"`
	Process *processStmt `parser:"| @@"`
	Param   *paramStmt   `parser:"| @@"`
}

// token is any value; the typed variants below restrict what may start a
// statement so that the grammar tells a block, a process entry and a
// parameter apart by their first token.
type token struct {
	Pos  lexer.Position
	Text string `parser:"@(Word | Path | String | Fields)"`
}

type wordToken struct {
	Pos  lexer.Position
	Text string `parser:"@Word"`
}

type targetToken struct {
	Pos  lexer.Position
	Text string `parser:"@(Path | String)"`
}

type blockStmt struct {
	Name  wordToken    `parser:"@@ Open EOL*"`
	Lines []*blockLine `parser:"( @@ EOL+ )* Close"`
}

type blockLine struct {
	Key    token    `parser:"@@ Eq?"`
	Values []*token `parser:"@@*"`
}

type processStmt struct {
	Target  targetToken `parser:"@@"`
	Script  *token      `parser:"( @@ ( ?! Eq ) )?"`
	Options []*option   `parser:"@@*"`
}

type option struct {
	Name  wordToken `parser:"@@ Eq"`
	Value token     `parser:"@@"`
}

type paramStmt struct {
	Key    wordToken `parser:"@@ Eq?"`
	Values []*token  `parser:"@@*"`
}

var grammar = participle.MustBuild[ast](
	participle.Lexer(pfileLexer),
	participle.Elide("Comment", "Continue", "Whitespace"),
	participle.UseLookahead(3),
)
