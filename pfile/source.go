package pfile

// The statements of a pfile as the parser reads them, every word with its
// position. They carry no meaning yet; a Builder gives them one.

// Word is one value as written: a bare word or a quoted string (unquoted,
// escapes resolved).
type Word struct {
	Text   string
	Quoted bool
	Pos    Pos
}

// Statement is one top-level statement: exactly one field is set.
type Statement struct {
	Param   *ParamStmt
	Process *ProcessStmt
	Block   *BlockStmt
}

// ParamStmt is a `Key Value...` or `Key = Value...` line.
type ParamStmt struct {
	Key    Word
	Values []Word
}

// ProcessStmt is a process entry: `<process> <restart-script> [opt=value...]`.
type ProcessStmt struct {
	Target  Word
	Script  *Word
	Options []Option
}

// Option is a `name=value` option of a process entry.
type Option struct {
	Name  Word
	Value Word
}

// BlockStmt is a `_bi_name{ ... }` block. Lines is every line inside it;
// a line whose key is PS_INIT, PS_EXEC, PS_ACTION or PS_QUIT is an entry,
// any other is a block option.
type BlockStmt struct {
	Name  Word
	Lines []BlockLine
}

// BlockLine is one line inside a block: a key and its values. For an
// entry, Fields holds the colon-separated fields of the entry, each with
// its own position (an entry may continue over several lines).
type BlockLine struct {
	Key    Word
	Values []Word
	Fields []Word
}
