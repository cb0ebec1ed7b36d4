// Package parser reads pfile text into the pfile model. The grammar is a
// participle grammar (grammar.go); Load reports every syntax error of a
// file, not only the first, and gives the statements to a pfile.Builder,
// which adds its checks.
package parser

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/pcheck/pcheck/pfile"
)

// maxSyntaxErrors bounds how many syntax errors one file reports.
const maxSyntaxErrors = 100

var bom = []byte{0xEF, 0xBB, 0xBF}

// Load reads, parses and validates the pfile at path. The File is nil
// when the diagnostics hold an error.
func Load(path string) (*pfile.File, pfile.Diagnostics) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, pfile.Diagnostics{{Pos: pfile.Pos{File: path, Line: 0, Col: 0}, Msg: readError(err)}}
	}
	return LoadBytes(path, data)
}

// LoadBytes parses and validates data as the pfile named path.
func LoadBytes(path string, data []byte) (*pfile.File, pfile.Diagnostics) {
	return load(path, text(data))
}

// text is the one copy of data that the tree's tokens share: without its
// byte order mark, ending in a newline.
func text(data []byte) string {
	data = bytes.TrimPrefix(data, bom)
	var b strings.Builder
	b.Grow(len(data) + 1)
	b.Write(data)
	if len(data) == 0 || data[len(data)-1] != '\n' {
		b.WriteByte('\n')
	}
	return b.String()
}

// load parses and validates input, the text of the pfile named path. The
// File keeps no slice of input.
func load(path, input string) (*pfile.File, pfile.Diagnostics) {
	tree, diags := parse(path, input)
	if tree == nil {
		return nil, diags
	}
	b := pfile.NewBuilder(path)
	diags = append(diags, convert(path, tree, b)...)
	f, more := b.File()
	diags = append(diags, more...)
	pfile.Sort(diags)
	if diags.HasErrors() {
		return nil, diags
	}
	return f, diags
}

func readError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return "cannot read pfile: " + pe.Err.Error()
	}
	return "cannot read pfile: " + err.Error()
}

// parse reads the syntax of a pfile. Every syntax error is reported: after
// an error the offending line is blanked out and the file parsed again, so
// the following lines are still checked. The tree is the last, error-free
// pass; it is nil when the errors left nothing that could be read (an
// unclosed block, too many errors).
func parse(path, input string) (*ast, pfile.Diagnostics) {
	// A byte copy of input (work) is made only when an error needs a line
	// blanked out.
	var work []byte
	var diags pfile.Diagnostics
	for ; ; input = string(work) {
		tree, err := grammar.ParseString(path, input)
		if err == nil {
			return tree, diags
		}
		if work == nil {
			work = []byte(input)
		}
		pos, msg := describe(err, work)
		diags = append(diags, pfile.Diagnostic{Pos: pfile.Pos{File: path, Line: pos.Line, Col: pos.Column}, Msg: msg})
		var unclosed *unclosedBlockError
		if errors.As(err, &unclosed) {
			// The block runs to the end of the file: nothing after its
			// name can be read as statements.
			blankFrom(work, bytes.LastIndexByte(work[:unclosed.pos.Offset], '\n')+1)
			continue
		}
		var ute *participle.UnexpectedTokenError
		if errors.As(err, &ute) && ute.Unexpected.Type == tokBlock {
			// A block without a name: skip all of it.
			start := ute.Unexpected.Pos.Offset
			blankRange(work, bytes.LastIndexByte(work[:start], '\n')+1, start+len(ute.Unexpected.Value))
			continue
		}
		if len(diags) >= maxSyntaxErrors || !blankLine(work, pos.Line) {
			return nil, diags
		}
	}
}

// blankLine replaces the text of line n (1-based) with spaces, keeping
// every offset; it reports false when the line is already blank, so the
// retry loop always ends.
func blankLine(b []byte, n int) bool {
	line := 1
	changed := false
	for i := range b {
		if b[i] == '\n' {
			line++
			if line > n {
				break
			}
			continue
		}
		if line == n && b[i] != ' ' && b[i] != '\r' {
			b[i] = ' '
			changed = true
		}
	}
	return changed
}

// blankFrom replaces everything from offset on with spaces, keeping line
// ends.
func blankFrom(b []byte, offset int) { blankRange(b, offset, len(b)) }

// blankRange replaces b[from:to] with spaces, keeping line ends.
func blankRange(b []byte, from, to int) {
	for i := from; i < to; i++ {
		if b[i] != '\n' {
			b[i] = ' '
		}
	}
}

// describe turns a participle error into a position and a message an
// operator can act on.
func describe(err error, text []byte) (lexer.Position, string) {
	var ute *participle.UnexpectedTokenError
	if errors.As(err, &ute) {
		return ute.Unexpected.Pos, unexpected(ute.Unexpected, lineOf(text, ute.Unexpected.Pos.Line))
	}
	var perr participle.Error
	if errors.As(err, &perr) {
		msg := perr.Message()
		return perr.Position(), msg
	}
	return lexer.Position{Line: 1, Column: 1}, err.Error()
}

func unexpected(tok lexer.Token, line string) string {
	switch {
	case tok.Value == "}":
		return "unexpected '}' outside a block"
	case strings.HasPrefix(tok.Value, "{"):
		return "unexpected '{': a block needs a name (such as _bi_webserv) before '{'"
	}
	if tok.EOF() {
		return "unexpected end of file: block not closed with '}'"
	}
	what := fmt.Sprintf("%q", tok.Value)
	switch tok.Value {
	case "\n", "\r\n":
		what = "end of line"
	case "=":
		what = "'='"
	}
	// Say what the line should look like, judged by how it starts.
	trimmed := strings.TrimLeft(line, " \t")
	switch {
	case strings.HasPrefix(trimmed, "/") || strings.HasPrefix(trimmed, `"`):
		return "unexpected " + what + ": a process entry is <process> <restart-script> [option=value ...]"
	case strings.HasPrefix(strings.ToUpper(trimmed), "PS_"):
		return "unexpected " + what + ": a block entry is PS_<kind> <type>:<file>:<call>:<timeout>:<interval>:<error>:<argc>:<argv>..."
	default:
		return "unexpected " + what + ": a parameter is Key Value or Key = Value"
	}
}

// lineOf returns line n (1-based) of text.
func lineOf(text []byte, n int) string {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(text, '\n')
		if j < 0 {
			return ""
		}
		text = text[j+1:]
	}
	if j := bytes.IndexByte(text, '\n'); j >= 0 {
		text = text[:j]
	}
	return string(text)
}

// convert gives the grammar's tree to b statement by statement, resolving
// quotes and splitting entry field lists into positioned fields; it
// returns the errors of statements that the grammar accepts but no
// statement form does (those are not given to b). A line's first token
// says what it is: a Path or String starts a process entry, a Word a
// parameter; a Word followed by '{' names a block.
func convert(path string, tree *ast, b *pfile.Builder) pfile.Diagnostics {
	c := converter{path: path, b: b, texts: make(map[string]string, 2*len(tree.Body.Stmts))}
	for i := range tree.Body.Stmts {
		s := &tree.Body.Stmts[i]
		switch {
		case s.Tail.Block != nil:
			c.block(s)
		case isTarget(s.First.Key.Text):
			c.process(s)
		default:
			c.param(s)
		}
	}
	return c.diags
}

// converter holds the statement being given to the Builder. The Builder
// keeps none of it, so one set of statements and slices serves the whole
// file.
type converter struct {
	path  string
	b     *pfile.Builder
	diags pfile.Diagnostics

	paramSt   pfile.ParamStmt
	processSt pfile.ProcessStmt
	blockSt   pfile.BlockStmt
	script    pfile.Word
	words     []pfile.Word // values and fields of the statement

	// texts holds one copy of each text that words have had: a File
	// keeps many of them, and they must not be slices of the input (that
	// would keep all of it for as long as the File lives).
	texts map[string]string
}

// keep returns the copy of text held in c.texts.
func (c *converter) keep(text string) string {
	if t, ok := c.texts[text]; ok {
		return t
	}
	t := strings.Clone(text)
	c.texts[t] = t
	return t
}

func (c *converter) errorf(t token, format string, args ...any) {
	c.diags = append(c.diags, pfile.Diagnostic{
		Pos: pfile.Pos{File: c.path, Line: int(t.Line), Col: int(t.Col)},
		Msg: fmt.Sprintf(format, args...),
	})
}

func (c *converter) word(t token) pfile.Word {
	w := word(c.path, t.pos(), t.Text)
	w.Text = c.keep(w.Text)
	return w
}

func isTarget(text string) bool {
	return strings.HasPrefix(text, "/") || strings.HasPrefix(text, `"`)
}

// values returns the words appended to c.words since start.
func (c *converter) values(start int) []pfile.Word { return c.words[start:len(c.words):len(c.words)] }

func (c *converter) block(s *stmt) {
	name := s.First.Key
	if s.First.Value != nil || isTarget(name.Text) {
		c.errorf(name, "unexpected '{': a block is _bi_<name>{ on a line of its own")
		return
	}
	if len(s.Tail.Rest) > 0 {
		c.errorf(s.Tail.Rest[0].Key, "unexpected %q after '}': a block ends with '}' on a line of its own", s.Tail.Rest[0].Key.Text)
		return
	}
	b := &c.blockSt
	b.Name, b.Lines = c.word(name), b.Lines[:0]
	c.words = c.words[:0]
	for _, l := range s.Tail.Block.Lines {
		first := &l.Items[0]
		rest := l.Items[1:]
		bl := pfile.BlockLine{Key: c.word(first.Key)}
		start := len(c.words)
		if first.Value != nil {
			// Option = value.
			c.words = append(c.words, c.word(*first.Value))
		}
		for _, it := range rest {
			if it.Value != nil {
				c.errorf(it.Key, "unexpected '=' in a block line: a block entry is PS_<kind> <type>:<file>:<call>:<timeout>:<interval>:<error>:<argc>:<argv>...")
				return
			}
			c.words = append(c.words, c.word(it.Key))
		}
		bl.Values = c.values(start)
		if first.Value == nil && len(bl.Values) > 0 && !bl.Values[0].Quoted {
			start = len(c.words)
			// The fields are slices of the kept text of the list.
			c.words = splitFields(c.words, c.path, rest[0].Key.pos(), bl.Values[0].Text)
			bl.Fields = c.values(start)
		}
		b.Lines = append(b.Lines, bl)
	}
	c.b.Add(pfile.Statement{Block: b})
}

func (c *converter) process(s *stmt) {
	const form = "a process entry is <process> <restart-script> [option=value ...]"
	if s.First.Value != nil {
		c.errorf(*s.First.Value, "unexpected '=' after the process: %s", form)
		return
	}
	p := &c.processSt
	p.Target, p.Script, p.Options = c.word(s.First.Key), nil, p.Options[:0]
	rest := s.Tail.Rest
	if len(rest) > 0 && rest[0].Value == nil {
		c.script = c.word(rest[0].Key)
		p.Script = &c.script
		rest = rest[1:]
	}
	for _, it := range rest {
		if it.Value == nil {
			c.errorf(it.Key, "unexpected %q: %s", it.Key.Text, form)
			return
		}
		if isTarget(it.Key.Text) {
			c.errorf(it.Key, "unexpected %q before '=': an option name is a word such as args, user or pidfile", it.Key.Text)
			return
		}
		p.Options = append(p.Options, pfile.Option{Name: c.word(it.Key), Value: c.word(*it.Value)})
	}
	c.b.Add(pfile.Statement{Process: p})
}

func (c *converter) param(s *stmt) {
	const form = "a parameter is Key Value or Key = Value"
	p := &c.paramSt
	p.Key, p.Values = c.word(s.First.Key), p.Values[:0]
	if s.First.Value != nil {
		p.Values = append(p.Values, c.word(*s.First.Value))
	}
	for _, it := range s.Tail.Rest {
		if it.Value != nil {
			c.errorf(it.Key, "unexpected '=' after %q: %s", it.Key.Text, form)
			return
		}
		p.Values = append(p.Values, c.word(it.Key))
	}
	c.b.Add(pfile.Statement{Param: p})
}

func word(path string, pos lexer.Position, text string) pfile.Word {
	w := pfile.Word{Text: text, Pos: pfile.Pos{File: path, Line: pos.Line, Col: pos.Column}}
	if strings.HasPrefix(text, `"`) {
		w.Quoted = true
		w.Text = unquote(text)
	}
	return w
}

// unquote strips the quotes of a string token and resolves \" and \\;
// any other backslash is kept as written (Windows-style paths, regexps).
func unquote(s string) string {
	s = s[1 : len(s)-1]
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// splitFields splits an entry's field list on ':', gives each field the
// position of its first character and appends the fields to fields. A
// field list may span lines (a line ending in ':' continues); the break
// and its indentation belong to no field. Inside [...] (an IPv6 literal)
// ':' does not split.
func splitFields(fields []pfile.Word, path string, start lexer.Position, text string) []pfile.Word {
	line, col := start.Line, start.Column
	from := 0 // start of the current field in text
	fromPos := pfile.Pos{File: path, Line: line, Col: col}
	depth := 0
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == ':' && depth <= 0:
			fields = append(fields, pfile.Word{Text: text[from:i], Pos: fromPos})
			col++
			from = i + 1
			// A line break after ':' continues the list on the next line.
			j := from
			for j < len(text) && isBlank(text[j]) {
				j++
			}
			if j < len(text) && text[j] == '\n' {
				line++
				col = 1
				j++
				for j < len(text) && isBlank(text[j]) {
					j++
					col++
				}
				i = j - 1
				from = j
			}
			fromPos = pfile.Pos{File: path, Line: line, Col: col}
			continue
		}
		if text[i] < 0x80 || text[i] >= 0xC0 {
			col++ // count runes, not bytes, as the lexer does
		}
	}
	return append(fields, pfile.Word{Text: text[from:], Pos: fromPos})
}
