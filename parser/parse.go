// Package parser reads pfile text into the pfile model. The grammar is a
// participle grammar (grammar.go); Parse reports every syntax error of a
// file, not only the first, and Load adds the checks of pfile.Build.
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
	src, diags := Parse(path, data)
	if src == nil {
		return nil, diags
	}
	f, more := pfile.Build(src)
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

// Parse reads the syntax of a pfile. Every syntax error is reported: after
// an error the offending line is blanked out and the file parsed again, so
// the following lines are still checked. The Source holds the statements
// of the last, error-free pass; it is nil when the errors left nothing
// that could be read (an unclosed block, too many errors).
func Parse(path string, data []byte) (*pfile.Source, pfile.Diagnostics) {
	text := bytes.TrimPrefix(data, bom)
	work := make([]byte, len(text), len(text)+1)
	copy(work, text)
	if len(work) == 0 || work[len(work)-1] != '\n' {
		work = append(work, '\n')
	}
	var diags pfile.Diagnostics
	for {
		tree, err := grammar.ParseBytes(path, work)
		if err == nil {
			return convert(path, tree), diags
		}
		pos, msg := describe(err, work)
		diags = append(diags, pfile.Diagnostic{Pos: pfile.Pos{File: path, Line: pos.Line, Col: pos.Column}, Msg: msg})
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
		if i := strings.Index(msg, "invalid input text "); i >= 0 {
			if strings.HasPrefix(msg[i+len("invalid input text "):], `"\"`) {
				msg = "unterminated quoted string"
			} else {
				msg = "invalid character"
			}
		}
		return perr.Position(), msg
	}
	return lexer.Position{Line: 1, Column: 1}, err.Error()
}

func unexpected(tok lexer.Token, line string) string {
	switch tok.Value {
	case "}":
		return "unexpected '}' outside a block"
	case "{":
		return "unexpected '{': a block needs a name (such as _bi_webserv) before '{'"
	case "=":
		return "unexpected '=': an option is name=value with no spaces"
	}
	if tok.EOF() {
		return "unexpected end of file: block not closed with '}'"
	}
	what := fmt.Sprintf("%q", tok.Value)
	if tok.Value == "\n" || tok.Value == "\r\n" {
		what = "end of line"
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

// convert turns the grammar's tree into a Source, resolving quotes and
// splitting entry field lists into positioned fields.
func convert(path string, tree *ast) *pfile.Source {
	src := &pfile.Source{Path: path}
	for _, s := range tree.Stmts {
		switch {
		case s.Block != nil:
			b := &pfile.BlockStmt{Name: word(path, s.Block.Name.Pos, s.Block.Name.Text)}
			for _, l := range s.Block.Lines {
				bl := pfile.BlockLine{Key: word(path, l.Key.Pos, l.Key.Text)}
				for _, v := range l.Values {
					bl.Values = append(bl.Values, word(path, v.Pos, v.Text))
				}
				if len(l.Values) > 0 && !bl.Values[0].Quoted {
					bl.Fields = splitFields(path, l.Values[0].Pos, l.Values[0].Text)
				}
				b.Lines = append(b.Lines, bl)
			}
			src.Statements = append(src.Statements, pfile.Statement{Block: b})
		case s.Process != nil:
			p := &pfile.ProcessStmt{Target: word(path, s.Process.Target.Pos, s.Process.Target.Text)}
			if s.Process.Script != nil {
				w := word(path, s.Process.Script.Pos, s.Process.Script.Text)
				p.Script = &w
			}
			for _, o := range s.Process.Options {
				p.Options = append(p.Options, pfile.Option{
					Name:  word(path, o.Name.Pos, o.Name.Text),
					Value: word(path, o.Value.Pos, o.Value.Text),
				})
			}
			src.Statements = append(src.Statements, pfile.Statement{Process: p})
		case s.Param != nil:
			p := &pfile.ParamStmt{Key: word(path, s.Param.Key.Pos, s.Param.Key.Text)}
			for _, v := range s.Param.Values {
				p.Values = append(p.Values, word(path, v.Pos, v.Text))
			}
			src.Statements = append(src.Statements, pfile.Statement{Param: p})
		}
	}
	return src
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

// splitFields splits an entry's field list on ':' and gives each field the
// position of its first character; a field list may span lines (a line
// ending in ':' continues), and the break with its indentation is not part
// of any field.
func splitFields(path string, start lexer.Position, text string) []pfile.Word {
	var fields []pfile.Word
	line, col := start.Line, start.Column
	cur := strings.Builder{}
	curPos := pfile.Pos{File: path, Line: line, Col: col}
	atLineStart := false
	depth := 0 // inside [...], an IPv6 literal, ':' does not split
	for _, r := range text {
		switch {
		case r == '\n':
			line++
			col = 1
			atLineStart = true
			continue
		case atLineStart && (r == ' ' || r == '\t' || r == '\r'):
			col++
			continue
		case r == '\r' || ((r == ' ' || r == '\t') && cur.Len() == 0):
			// trailing blanks before a line break
			col++
			continue
		}
		if atLineStart {
			atLineStart = false
			if cur.Len() == 0 {
				curPos = pfile.Pos{File: path, Line: line, Col: col}
			}
		}
		switch r {
		case '[':
			depth++
		case ']':
			depth--
		}
		if r == ':' && depth <= 0 {
			fields = append(fields, pfile.Word{Text: cur.String(), Pos: curPos})
			cur.Reset()
			col++
			curPos = pfile.Pos{File: path, Line: line, Col: col}
			continue
		}
		cur.WriteRune(r)
		col++
	}
	fields = append(fields, pfile.Word{Text: cur.String(), Pos: curPos})
	return fields
}
