package pfile

import (
	"fmt"
	"net"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Builder gives the statements of a pfile their meaning, in file order:
// every global parameter, process entry and block is checked and typed
// here, and every default is filled in. All problems are reported, each
// with its position. The parser feeds it one statement at a time, so a
// pfile's syntax is never held whole beside its model.
type Builder struct {
	f         *File
	diags     Diagnostics
	seenParam map[string]Pos
	procs     []*procBuild
	// head and argvPos are scratch of entry: the fields of an entry with
	// its "--" expanded, and where each argv field of the block's
	// PS_EXEC starts (for monitor's errors).
	head    []Word
	argvPos []Pos
}

// NewBuilder returns a Builder for the pfile at path.
func NewBuilder(path string) *Builder {
	return &Builder{f: &File{Path: path, Params: DefaultParams()}, seenParam: map[string]Pos{}}
}

// Add reads the next statement. It keeps nothing of st: the caller may
// reuse its statements and their slices for the next one.
func (b *Builder) Add(st Statement) {
	switch {
	case st.Param != nil:
		if len(b.procs) > 0 {
			b.errorf(st.Param.Key.Pos, "parameter %s after the first process entry: global parameters go before the process entries", st.Param.Key.Text)
			return
		}
		b.param(st.Param)
	case st.Process != nil:
		if p := b.process(st.Process); p != nil {
			b.procs = append(b.procs, p)
		}
	case st.Block != nil:
		if len(b.procs) == 0 {
			b.errorf(st.Block.Name.Pos, "block %s before any process entry: a block applies to the process entry above it", st.Block.Name.Text)
			return
		}
		if blk := b.block(st.Block); blk != nil {
			p := b.procs[len(b.procs)-1].p
			p.Blocks = append(p.Blocks, blk)
		}
	}
}

// File ends the pfile: it checks what needs every statement (duplicate
// entries, the backoff parameters), fills the entries' defaults from the
// parameters and returns the File, nil when any diagnostic is an error.
func (b *Builder) File() (*File, Diagnostics) {
	if len(b.procs) == 0 && len(b.diags.Errors()) == 0 {
		b.errorf(Pos{File: b.f.Path, Line: 1, Col: 1}, "no process entry: a pfile names at least one process and its restart script")
	}
	b.checkDuplicates(b.procs)
	b.checkBackoff()
	b.f.Processes = make([]*Process, 0, len(b.procs))
	for _, p := range b.procs {
		b.fillDefaults(p)
		b.f.Processes = append(b.f.Processes, p.p)
	}
	Sort(b.diags)
	if b.diags.HasErrors() {
		return nil, b.diags
	}
	SetKeys(b.f)
	return b.f, b.diags
}

// Sort orders diagnostics by file, line and column.
func Sort(ds Diagnostics) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// procBuild is a process entry being built: which per-entry values the
// pfile set, so that the others are filled from the parameters at the end.
type procBuild struct {
	p                                  *Process
	setRetry, setGrace, setAct, setTmo bool
	// backoff holds the backoff options the entry sets (the rest come
	// from the parameters) and where; rearm is its RetryOverRearm.
	backoff backoffSet
	rearm   *Word
}

// backoffSet is which of RestartDelay, RestartDelayMax and
// RestartDelayReset a PARAM section or an entry sets, and where.
type backoffSet struct {
	delay, max, reset *Word
}

func (b *Builder) errorf(pos Pos, format string, args ...any) {
	b.diags = append(b.diags, Diagnostic{Pos: pos, Severity: Error, Msg: fmt.Sprintf(format, args...)})
}

func (b *Builder) warnf(pos Pos, format string, args ...any) {
	b.diags = append(b.diags, Diagnostic{Pos: pos, Severity: Warning, Msg: fmt.Sprintf(format, args...)})
}

// paramSpec describes one global parameter: how to read its value.
type paramSpec struct {
	name string
	set  func(b *Builder, p *Params, key Word, v Word)
}

var params = []paramSpec{
	{"MonitorInterval", secondsParam(1, func(p *Params) *time.Duration { return &p.MonitorInterval })},
	{"MsgCheckInterval", secondsParam(1, func(p *Params) *time.Duration { return &p.MsgCheckInterval })},
	{"RetryCount", intParam(0, func(p *Params) *int { return &p.RetryCount })},
	{"Grace", secondsParam(1, func(p *Params) *time.Duration { return &p.Grace })},
	{"retry_over_action", actionParam},
	{"RetryOverAction", actionParam},
	{"RestartTimeout", secondsParam(1, func(p *Params) *time.Duration { return &p.RestartTimeout })},
	{"StartWait", secondsParam(1, func(p *Params) *time.Duration { return &p.StartWait })},
	{"KillWait", secondsParam(0, func(p *Params) *time.Duration { return &p.KillWait })},
	{"DumpFileName", pathParam(func(p *Params) (*string, *Pos) { return &p.DumpFileName, &p.DumpFileNamePos })},
	{"SyslogFacility", facilityParam},
	{"AutoReboot", func(b *Builder, p *Params, key Word, v Word) {
		if on, ok := b.onOff(v, key.Text); ok {
			p.AutoReboot, p.AutoRebootPos = on, v.Pos
		}
	}},
	{"RebootCommand", func(b *Builder, p *Params, key Word, v Word) { p.RebootCommand, p.RebootCommandPos = v.Text, v.Pos }},
	{"RebootLimit", intParam(1, func(p *Params) *int { return &p.RebootLimit })},
	{"RebootWindow", secondsParam(1, func(p *Params) *time.Duration { return &p.RebootWindow })},
	{"RebootStateFile", pathParam(func(p *Params) (*string, *Pos) { return &p.RebootStateFile, &p.RebootStateFilePos })},
	{"ClusterNotify", clusterNotifyParam},
	{"ClusterHealthAttribute", healthAttributeParam},
	{"RestartDelay", secondsParam(0, func(p *Params) *time.Duration { return &p.Backoff.Delay })},
	{"RestartDelayMax", secondsParam(1, func(p *Params) *time.Duration { return &p.Backoff.Max })},
	{"RestartDelayReset", secondsParam(1, func(p *Params) *time.Duration { return &p.Backoff.Reset })},
	{"RetryOverRearm", func(b *Builder, p *Params, key Word, v Word) {
		if n, ok := b.integer(v, key.Text, 0, maxSeconds); ok {
			p.RetryOverRearm, p.RetryOverRearmPos = time.Duration(n)*time.Second, v.Pos
		}
	}},
}

// processOptions and blockOptions are the option names of a process entry
// and of a block, as the hint for a misspelt one spells them.
var (
	processOptions = []string{"args", "pidfile", "user", "count", "retry", "grace", "action", "timeout", "RestartDelay", "RestartDelayMax", "RestartDelayReset", "RetryOverRearm"}
	blockOptions   = []string{"TLSVerify", "TLSCAFile", "ExpectStatus", "ExpectHeader", "ExpectBody", "TLSExpiryWarn", "TLSExpiryFail", "StallDiagnostics", "StallSignal", "StallSignalWait"}
)

// didYouMean returns "; did you mean X?" for the known name nearest to word
// (case aside) when it is near enough to be a slip: one edit for a short
// word, up to three for a long one (an insertion, a deletion, a change or
// two letters swapped each count one). It returns "" otherwise.
func didYouMean(word string, known []string) string {
	limit := min(1+len(word)/8, 3)
	best, bestD := "", limit+1
	for _, k := range known {
		if d := editDistance(strings.ToLower(word), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

// editDistance is the optimal string alignment distance between a and b
// (bytes).
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Facilities are the accepted SyslogFacility values.
var Facilities = []string{"daemon", "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

func (b *Builder) param(st *ParamStmt) {
	key := st.Key
	if strings.EqualFold(key.Text, "Cleanup") {
		b.cleanup(st)
		return
	}
	var spec *paramSpec
	for i := range params {
		if strings.EqualFold(params[i].name, key.Text) {
			spec = &params[i]
		}
	}
	if spec == nil {
		names := make([]string, len(params))
		for i := range params {
			names[i] = params[i].name
		}
		b.warnf(key.Pos, "unknown parameter %s%s (ignored)", key.Text, didYouMean(key.Text, names))
		return
	}
	if len(st.Values) == 0 {
		if spec.name == "ClusterHealthAttribute" {
			// An unquoted #health-pcheck is a comment.
			b.errorf(key.Pos, `%s needs a value: quote the name, a # starts a comment (ClusterHealthAttribute "#health-pcheck")`, spec.name)
			return
		}
		b.errorf(key.Pos, "%s needs a value", spec.name)
		return
	}
	canon := strings.ToLower(spec.name)
	if canon == "retryoveraction" {
		canon = "retry_over_action"
	}
	if first, dup := b.seenParam[canon]; dup {
		b.warnf(key.Pos, "%s is set again (first at line %d); the last value is used", key.Text, first.Line)
	}
	b.seenParam[canon] = key.Pos
	v := st.Values[0]
	if len(st.Values) > 1 {
		if !strings.EqualFold(spec.name, "RebootCommand") {
			b.errorf(st.Values[1].Pos, "%s takes one value; quote a value that contains spaces", spec.name)
			return
		}
		// RebootCommand may be written unquoted: /sbin/shutdown -r now.
		words := make([]string, len(st.Values))
		for i, w := range st.Values {
			words[i] = w.Text
		}
		v = Word{Text: strings.Join(words, " "), Pos: v.Pos}
	}
	spec.set(b, &b.f.Params, key, v)
}

func (b *Builder) cleanup(st *ParamStmt) {
	if len(st.Values) != 2 {
		b.errorf(st.Key.Pos, `Cleanup takes a quoted pattern and minutes: Cleanup "<pattern>" <minutes>`)
		return
	}
	pat, min := st.Values[0], st.Values[1]
	if pat.Text == "" {
		b.errorf(pat.Pos, "Cleanup pattern is empty: it would match every process")
		return
	}
	n, ok := b.integer(min, "Cleanup minutes", 1, 1<<31-1)
	if !ok {
		return
	}
	b.f.Params.Cleanup = append(b.f.Params.Cleanup, Cleanup{Pos: st.Key.Pos, Pattern: pat.Text, Age: time.Duration(n) * time.Minute})
}

func secondsParam(min int, field func(*Params) *time.Duration) func(*Builder, *Params, Word, Word) {
	return func(b *Builder, p *Params, key Word, v Word) {
		if n, ok := b.integer(v, key.Text, min, maxSeconds); ok {
			*field(p) = time.Duration(n) * time.Second
		}
	}
}

func intParam(min int, field func(*Params) *int) func(*Builder, *Params, Word, Word) {
	return func(b *Builder, p *Params, key Word, v Word) {
		if n, ok := b.integer(v, key.Text, min, 1<<31-1); ok {
			*field(p) = n
		}
	}
}

func pathParam(field func(*Params) (*string, *Pos)) func(*Builder, *Params, Word, Word) {
	return func(b *Builder, p *Params, key Word, v Word) {
		if !strings.HasPrefix(v.Text, "/") {
			b.errorf(v.Pos, "%s must be an absolute path, not %q", key.Text, v.Text)
			return
		}
		text, pos := field(p)
		*text, *pos = v.Text, v.Pos
	}
}

func actionParam(b *Builder, p *Params, key Word, v Word) {
	if a, ok := b.action(v, key.Text); ok {
		p.RetryOverAction = a
	}
}

func facilityParam(b *Builder, p *Params, key Word, v Word) {
	for _, f := range Facilities {
		if strings.EqualFold(f, v.Text) {
			p.SyslogFacility = f
			return
		}
	}
	b.errorf(v.Pos, "unknown SyslogFacility %q (one of %s)", v.Text, strings.Join(Facilities, ", "))
}

func clusterNotifyParam(b *Builder, p *Params, key Word, v Word) {
	switch strings.ToLower(v.Text) {
	case ClusterPacemaker:
		p.ClusterNotify = ClusterPacemaker
	case "off", "none":
		p.ClusterNotify = ""
	default:
		b.errorf(v.Pos, "unknown ClusterNotify %q (pacemaker or off)", v.Text)
	}
}

func healthAttributeParam(b *Builder, p *Params, key Word, v Word) {
	name := v.Text
	if strings.EqualFold(name, "off") || strings.EqualFold(name, "none") {
		p.ClusterHealthAttribute = ""
		return
	}
	if !strings.HasPrefix(name, HealthPrefix) {
		b.errorf(v.Pos, "ClusterHealthAttribute %q must start with %s (node-health-strategy reads only those)", name, HealthPrefix)
		return
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("#-_.", r)) {
			b.errorf(v.Pos, "ClusterHealthAttribute %q: only letters, digits and # - _ . are allowed", name)
			return
		}
	}
	p.ClusterHealthAttribute = name
}

// maxSeconds bounds every duration so that it fits a time.Duration.
const maxSeconds = 100 * 365 * 86400

func (b *Builder) integer(v Word, what string, min, max int) (int, bool) {
	n, err := strconv.Atoi(v.Text)
	if err != nil {
		b.errorf(v.Pos, "%s must be a whole number, not %q", what, v.Text)
		return 0, false
	}
	if n < min || n > max {
		if max == maxSeconds || max == 1<<31-1 {
			b.errorf(v.Pos, "%s must be at least %d, not %d", what, min, n)
		} else {
			b.errorf(v.Pos, "%s must be between %d and %d, not %d", what, min, max, n)
		}
		return 0, false
	}
	return n, true
}

func (b *Builder) onOff(v Word, what string) (bool, bool) {
	switch strings.ToLower(v.Text) {
	case "on", "yes", "true", "1":
		return true, true
	case "off", "no", "false", "0":
		return false, true
	}
	b.errorf(v.Pos, "%s must be on or off, not %q", what, v.Text)
	return false, false
}

func (b *Builder) action(v Word, what string) (Action, bool) {
	for i, n := range actionNames {
		if strings.EqualFold(n, v.Text) {
			return Action(i), true
		}
	}
	b.errorf(v.Pos, "unknown %s %q (one of continue, shutdown, exit)", what, v.Text)
	return 0, false
}

func (b *Builder) process(st *ProcessStmt) *procBuild {
	t := st.Target
	p := &Process{Pos: t.Pos, Name: t.Text, ByName: t.Quoted, Count: 1}
	ok := true
	if t.Quoted && t.Text == "" {
		b.errorf(t.Pos, "process name is empty")
		ok = false
	}
	if st.Script == nil {
		b.errorf(t.Pos, "process entry %s has no restart script: <process> <restart-script> [option=value ...]", t.Text)
		return nil
	}
	if !strings.HasPrefix(st.Script.Text, "/") {
		b.errorf(st.Script.Pos, "restart script must be an absolute path, not %q", st.Script.Text)
		ok = false
	}
	p.Script, p.ScriptPos = st.Script.Text, st.Script.Pos
	pb := &procBuild{p: p}
	seen := map[string]Pos{}
	for _, o := range st.Options {
		name := strings.ToLower(o.Name.Text)
		if first, dup := seen[name]; dup {
			b.errorf(o.Name.Pos, "option %s is given twice (first at column %d)", o.Name.Text, first.Col)
			ok = false
			continue
		}
		seen[name] = o.Name.Pos
		v := o.Value
		switch name {
		case "args":
			if v.Text == "" {
				b.errorf(v.Pos, "args is empty")
				ok = false
			}
			p.Args = v.Text
		case "pidfile":
			if !strings.HasPrefix(v.Text, "/") {
				b.errorf(v.Pos, "pidfile must be an absolute path, not %q", v.Text)
				ok = false
			}
			p.PidFile = v.Text
		case "user":
			if v.Text == "" {
				b.errorf(v.Pos, "user is empty")
				ok = false
			}
			p.User = v.Text
		case "count":
			n, good := b.integer(v, "count", 1, 1<<20)
			ok = ok && good
			p.Count = n
		case "retry":
			n, good := b.integer(v, "retry", 0, 1<<31-1)
			ok = ok && good
			p.Retry, pb.setRetry = n, true
		case "grace":
			n, good := b.integer(v, "grace", 1, maxSeconds)
			ok = ok && good
			p.Grace, pb.setGrace = time.Duration(n)*time.Second, true
		case "action":
			a, good := b.action(v, "action")
			ok = ok && good
			p.Action, pb.setAct = a, true
		case "timeout":
			n, good := b.integer(v, "timeout", 1, maxSeconds)
			ok = ok && good
			p.Timeout, pb.setTmo = time.Duration(n)*time.Second, true
		case "restartdelay", "restartdelaymax", "restartdelayreset", "retryoverrearm":
			minimum := 1
			if name == "restartdelay" || name == "retryoverrearm" {
				minimum = 0 // 0 is off
			}
			n, good := b.integer(v, o.Name.Text, minimum, maxSeconds)
			ok = ok && good
			d, w := time.Duration(n)*time.Second, &Word{Text: o.Name.Text, Pos: o.Name.Pos}
			switch name {
			case "restartdelay":
				p.Backoff.Delay, pb.backoff.delay = d, w
			case "restartdelaymax":
				p.Backoff.Max, pb.backoff.max = d, w
			case "restartdelayreset":
				p.Backoff.Reset, pb.backoff.reset = d, w
			default:
				p.RetryOverRearm, pb.rearm = d, w
			}
		default:
			b.warnf(o.Name.Pos, "unknown option %s%s (ignored)", o.Name.Text, didYouMean(o.Name.Text, processOptions))
		}
	}
	if !ok {
		// The entry is still returned so that its blocks are checked.
		return pb
	}
	return pb
}

func (b *Builder) fillDefaults(pb *procBuild) {
	prm := b.f.Params
	if !pb.setRetry {
		pb.p.Retry = prm.RetryCount
	}
	if !pb.setGrace {
		pb.p.Grace = prm.Grace
	}
	if !pb.setAct {
		pb.p.Action = prm.RetryOverAction
	}
	if !pb.setTmo {
		pb.p.Timeout = prm.RestartTimeout
	}
	b.fillBackoff(pb)
}

// checkBackoff checks the backoff parameters of the PARAM section: a
// RestartDelayMax below RestartDelay is an error; an unset one is raised
// to RestartDelay. RetryOverRearm with a retry_over_action other than
// continue is a warning: it applies to the entries whose action= is
// continue only.
func (b *Builder) checkBackoff() {
	p := &b.f.Params
	if _, set := b.seenParam["restartdelaymax"]; !set {
		p.Backoff.Max = max(p.Backoff.Max, p.Backoff.Delay)
	} else if p.Backoff.Max < p.Backoff.Delay {
		b.errorf(b.seenParam["restartdelaymax"], "RestartDelayMax %s is below RestartDelay %s", secs(p.Backoff.Max), secs(p.Backoff.Delay))
	}
	if p.RetryOverRearm > 0 && p.RetryOverAction != ActionContinue {
		b.warnf(p.RetryOverRearmPos, "RetryOverRearm applies to retry_over_action continue only, not %s: only entries with action=continue are re-armed", p.RetryOverAction)
	}
}

// fillBackoff fills the entry's backoff from the parameters where it
// sets none and checks it as checkBackoff does; a RetryOverRearm of the
// entry's own needs action continue.
func (b *Builder) fillBackoff(pb *procBuild) {
	p, prm, set := pb.p, b.f.Params, pb.backoff
	if set.delay == nil {
		p.Backoff.Delay = prm.Backoff.Delay
	}
	if set.reset == nil {
		p.Backoff.Reset = prm.Backoff.Reset
	}
	if set.max == nil {
		p.Backoff.Max = max(prm.Backoff.Max, p.Backoff.Delay)
	} else if p.Backoff.Max < p.Backoff.Delay {
		b.errorf(set.max.Pos, "%s %s is below RestartDelay %s", set.max.Text, secs(p.Backoff.Max), secs(p.Backoff.Delay))
	}
	switch {
	case pb.rearm == nil && p.Action == ActionContinue:
		p.RetryOverRearm = prm.RetryOverRearm
	case pb.rearm == nil:
		p.RetryOverRearm = 0
	case p.Action != ActionContinue && p.RetryOverRearm > 0:
		b.errorf(pb.rearm.Pos, "%s applies to action continue only, not %s: an entry with action %s ends monitoring of the pfile", pb.rearm.Text, p.Action, p.Action)
	}
}

// checkDuplicates rejects two entries that would watch the same processes.
func (b *Builder) checkDuplicates(procs []*procBuild) {
	type key struct{ name, args, user, pidfile string }
	first := make(map[key]Pos, len(procs))
	for _, pb := range procs {
		p := pb.p
		k := key{p.Name, p.Args, p.User, p.PidFile}
		if pos, dup := first[k]; dup {
			b.errorf(p.Pos, "duplicate process entry %s (first at line %d): add args= or user= to tell them apart", p.Name, pos.Line)
			continue
		}
		first[k] = p.Pos
	}
}

// library is one built-in monitor: its block name, its library file, and
// how its PS_EXEC arguments are read.
type library struct {
	block, file string
	kind        Kind
	minArgc     int
	maxArgc     int // -1: no limit
}

var libraries = []library{
	{"_bi_webserv", "lib_bi_webserv.so", KindWebserv, 2, 3},
	{"_bi_webservs", "lib_bi_webservs.so", KindWebservs, 2, 5},
	{"_bi_websevs", "lib_bi_websevs.so", KindWebservs, 2, 5}, // the guide's spelling in its prose
	{"_bi_socket", "lib_bi_socket.so", KindSocket, 2, 2},
	{"_bi_heartbeat", "lib_bi_heartbeat.so", KindHeartbeat, 2, 2},
	{"_bi_listen", "lib_bi_listen.so", KindListen, 2, 3},
	{"_bi_children", "lib_bi_children.so", KindChildren, 2, -1},
	{"_bi_resource", "lib_bi_resource.so", KindResource, 3, 3},
}

func libraryByFile(file string) *library {
	base := path.Base(file)
	for i := range libraries {
		if strings.EqualFold(libraries[i].file, base) {
			return &libraries[i]
		}
	}
	return nil
}

func libraryByBlock(name string) *library {
	for i := range libraries {
		if strings.EqualFold(libraries[i].block, name) {
			return &libraries[i]
		}
	}
	return nil
}

func (b *Builder) block(st *BlockStmt) *Block {
	blk := &Block{Pos: st.Name.Pos, Name: st.Name.Text}
	if !strings.HasPrefix(strings.ToLower(st.Name.Text), "_bi_") {
		b.errorf(st.Name.Pos, "unknown block %s: block names start with _bi_ (_bi_webserv, _bi_webservs, _bi_socket, ...)", st.Name.Text)
		return nil
	}
	// Entries has room for every entry line, so that byKind's pointers
	// into it stay valid.
	n := 0
	for i := range st.Lines {
		if isEntryKind(EntryKind(strings.ToUpper(st.Lines[i].Key.Text))) {
			n++
		}
	}
	blk.Entries = make([]Entry, 0, n)
	byKind := map[EntryKind]*Entry{}
	ok := true
	var tlsVerify, tlsCA *Word
	var httpOpts []blockOpt
	var diag stallOptions
	for i := range st.Lines {
		l := &st.Lines[i]
		kind := EntryKind(strings.ToUpper(l.Key.Text))
		if !isEntryKind(kind) {
			switch strings.ToLower(l.Key.Text) {
			case "tlsverify":
				tlsVerify = b.blockOption(l)
			case "tlscafile":
				tlsCA = b.blockOption(l)
			case optExpectStatus, optExpectHeader, optExpectBody, optTLSExpiryWarn, optTLSExpiryFail:
				if v := b.blockOption(l); v != nil {
					httpOpts = append(httpOpts, blockOpt{key: l.Key, value: *v})
				}
			case "stalldiagnostics":
				diag.on = b.blockOption(l)
			case "stallsignal":
				diag.signal = b.blockOption(l)
			case "stallsignalwait":
				diag.wait = b.blockOption(l)
			default:
				if strings.HasPrefix(strings.ToUpper(l.Key.Text), "PS_") {
					b.errorf(l.Key.Pos, "unknown entry %s (one of PS_INIT, PS_EXEC, PS_ACTION, PS_QUIT)", l.Key.Text)
					ok = false
				} else {
					b.warnf(l.Key.Pos, "unknown block option %s%s (ignored)", l.Key.Text, didYouMean(l.Key.Text, blockOptions))
				}
			}
			continue
		}
		if prev, dup := byKind[kind]; dup {
			b.errorf(l.Key.Pos, "%s appears twice in %s (first at line %d)", kind, st.Name.Text, prev.Pos.Line)
			ok = false
			continue
		}
		blk.Entries = append(blk.Entries, Entry{})
		e := &blk.Entries[len(blk.Entries)-1]
		if !b.entry(e, kind, l) {
			blk.Entries = blk.Entries[:len(blk.Entries)-1]
			ok = false
			continue
		}
		byKind[kind] = e
	}
	exec := byKind[EntryExec]
	if exec == nil {
		if ok {
			b.errorf(st.Name.Pos, "block %s has no PS_EXEC entry: nothing to monitor", st.Name.Text)
		}
		return nil
	}
	// Which monitor: CMD entries run a command; DLL entries name a library
	// that must agree with the block name.
	var lib *library
	if strings.EqualFold(exec.Type, "CMD") {
		blk.Monitor.Kind = KindCommand
	} else {
		blockLib := libraryByBlock(st.Name.Text)
		if blockLib == nil {
			b.errorf(st.Name.Pos, "unknown block %s (known: _bi_webserv, _bi_webservs, _bi_socket, _bi_heartbeat, _bi_listen, _bi_children, _bi_resource)", st.Name.Text)
			return nil
		}
		lib = blockLib
		blk.Monitor.Kind = lib.kind
	}
	for i := range blk.Entries {
		e := &blk.Entries[i]
		if strings.EqualFold(e.Type, "CMD") {
			if e.Kind == EntryExec {
				continue
			}
			if lib != nil {
				b.errorf(e.Pos, "%s is a CMD entry in a %s block whose PS_EXEC is DLL", e.Kind, st.Name.Text)
				ok = false
			}
			continue
		}
		l := libraryByFile(e.File)
		if l == nil {
			b.errorf(e.Pos, "unknown library %s in %s (known: lib_bi_webserv.so, lib_bi_webservs.so, lib_bi_socket.so, lib_bi_heartbeat.so, lib_bi_listen.so, lib_bi_children.so, lib_bi_resource.so)", path.Base(e.File), e.Kind)
			ok = false
			continue
		}
		if lib == nil {
			if blk.Monitor.Kind != KindCommand || e.Kind == EntryExec {
				continue
			}
			// A DLL INIT/ACTION/QUIT beside a CMD PS_EXEC is harmless.
			continue
		}
		if l.kind != lib.kind {
			b.errorf(e.Pos, "%s names %s but the block is %s (use %s)", e.Kind, path.Base(e.File), st.Name.Text, lib.file)
			ok = false
		}
	}
	// The guide's blocks have all four entries; ours and CMD blocks may
	// leave out the ones that only carry defaults.
	if lib != nil && ok && (lib.kind == KindWebserv || lib.kind == KindWebservs || lib.kind == KindSocket) {
		var missing []string
		for _, k := range []EntryKind{EntryInit, EntryAction, EntryQuit} {
			if byKind[k] == nil {
				missing = append(missing, string(k))
			}
		}
		if len(missing) > 0 {
			b.warnf(st.Name.Pos, "block %s has no %s; defaults are used", st.Name.Text, strings.Join(missing, ", "))
		}
	}
	if !ok {
		return nil
	}
	if !b.monitor(blk, lib, exec, byKind[EntryAction]) {
		return nil
	}
	if !b.httpOptions(blk, httpOpts) {
		return nil
	}
	if tlsVerify != nil || tlsCA != nil {
		if blk.Monitor.Kind != KindWebservs {
			w := tlsVerify
			if w == nil {
				w = tlsCA
			}
			b.errorf(w.Pos, "TLSVerify and TLSCAFile apply to _bi_webservs only")
			return nil
		}
		if tlsVerify != nil {
			on, good := b.onOff(*tlsVerify, "TLSVerify")
			if !good {
				return nil
			}
			blk.Monitor.TLSVerify = on
		}
		if tlsCA != nil {
			if !strings.HasPrefix(tlsCA.Text, "/") {
				b.errorf(tlsCA.Pos, "TLSCAFile must be an absolute path, not %q", tlsCA.Text)
				return nil
			}
			blk.Monitor.TLSCAFile, blk.TLSCAFilePos = tlsCA.Text, tlsCA.Pos
			blk.Monitor.TLSVerify = true
		}
	}
	if !b.stallOptions(&blk.Monitor, diag) {
		return nil
	}
	return blk
}

// stallOptions are the block options about a stall kill, as written.
type stallOptions struct {
	on, signal, wait *Word
}

// StallSignals are the signals StallSignal may name: those a program may
// take to report on itself (a JVM prints its threads on QUIT) and live.
var StallSignals = []string{"QUIT", "USR1", "USR2", "HUP", "INT", "ABRT"}

// DefaultStallSignalWait is how long pcheck waits after StallSignal when
// the block sets no StallSignalWait; maxStallSignalWait bounds it, since
// the entry takes no new stall results meanwhile.
const (
	DefaultStallSignalWait = 3 * time.Second
	maxStallSignalWait     = 60
)

// stallOptions reads StallDiagnostics, StallSignal and StallSignalWait
// into m. StallSignal and StallSignalWait need StallDiagnostics on.
func (b *Builder) stallOptions(m *Monitor, o stallOptions) bool {
	if o.on == nil && o.signal == nil && o.wait == nil {
		return true
	}
	if o.on != nil {
		on, good := b.onOff(*o.on, "StallDiagnostics")
		if !good {
			return false
		}
		m.StallDiagnostics = on
	}
	if !m.StallDiagnostics {
		w := o.signal
		if w == nil {
			w = o.wait
		}
		if w != nil {
			b.errorf(w.Pos, "StallSignal and StallSignalWait need StallDiagnostics on in the same block")
			return false
		}
		return true
	}
	if o.signal != nil {
		name := strings.TrimPrefix(strings.ToUpper(o.signal.Text), "SIG")
		if !slices.Contains(StallSignals, name) {
			b.errorf(o.signal.Pos, "unknown StallSignal %q (one of %s)", o.signal.Text, strings.Join(StallSignals, ", "))
			return false
		}
		m.StallSignal, m.StallSignalWait = name, DefaultStallSignalWait
	}
	if o.wait != nil {
		if o.signal == nil {
			b.errorf(o.wait.Pos, "StallSignalWait without StallSignal: there is nothing to wait for")
			return false
		}
		n, good := b.integer(*o.wait, "StallSignalWait", 0, maxStallSignalWait)
		if !good {
			return false
		}
		m.StallSignalWait = time.Duration(n) * time.Second
	}
	return true
}

func (b *Builder) blockOption(l *BlockLine) *Word {
	if len(l.Values) != 1 {
		b.errorf(l.Key.Pos, "%s takes one value", l.Key.Text)
		return nil
	}
	v := l.Values[0]
	return &v
}

// isDefault reports whether a field means "default": "-" or empty.
func isDefault(s string) bool { return s == "" || s == "-" }

// entry reads one block entry into e by the rule documented in docs/pfile.md:
//
//	<type>:<file>:<call>:<timeout>:<interval>:<error>:<argc>:<argv0>:...
//
// PS_EXEC is read from the left. PS_INIT, PS_ACTION and PS_QUIT take no
// arguments, so they end in <error>:<argc> with argc 0 and are read from
// the right; the fields before error are timeout and interval, and extra
// default fields ("-" or empty) before them are ignored. A field "--" is
// two default fields whose colon was lost (the guide's _bi_socket sample).
// This reads the guide's PS_ACTION "DIRECT:-::-:1:0" as error 1, argc 0,
// as its table says, and "DIRECT:-:--:1:0" as the same entry. It reports
// whether the entry is valid.
func (b *Builder) entry(e *Entry, kind EntryKind, l *BlockLine) bool {
	*e = Entry{Pos: l.Key.Pos, Kind: kind, Error: -1}
	if len(l.Values) == 0 {
		b.errorf(l.Key.Pos, "%s has no fields: %s <type>:<file>:<call>:<timeout>:<interval>:<error>:<argc>:<argv>...", kind, kind)
		return false
	}
	if len(l.Values) > 1 {
		b.errorf(l.Values[1].Pos, "unexpected %q after the fields of %s: fields are separated by ':' with no spaces", l.Values[1].Text, kind)
		return false
	}
	if l.Values[0].Quoted {
		b.errorf(l.Values[0].Pos, "the fields of %s are not quoted", kind)
		return false
	}
	f := l.Fields
	if len(f) < 4 {
		b.errorf(l.Values[0].Pos, "%s needs at least <type>:<file>:<call>:<timeout>, found %d field(s)", kind, len(f))
		return false
	}
	e.Type = strings.ToUpper(f[0].Text)
	if e.Type != "DLL" && e.Type != "CMD" {
		b.errorf(f[0].Pos, "unknown entry type %q (DLL or CMD)", f[0].Text)
		return false
	}
	e.File, e.FilePos = f[1].Text, f[1].Pos
	if !strings.HasPrefix(e.File, "/") {
		b.errorf(f[1].Pos, "%s file must be an absolute path, not %q", kind, e.File)
		return false
	}
	e.Call = strings.ToUpper(f[2].Text)
	if !isDefault(e.Call) && e.Call != "DIRECT" {
		b.errorf(f[2].Pos, "unknown call %q (DIRECT)", f[2].Text)
		return false
	}
	e.Call = "DIRECT"
	tail := f[3:]
	var timeout, interval, errF, argc *Word
	if kind == EntryExec {
		head, rest := b.expandHead(tail, 4)
		if len(head) < 4 {
			b.errorf(tail[len(tail)-1].Pos, "PS_EXEC needs <timeout>:<interval>:<error>:<argc> after %s", f[2].Text)
			return false
		}
		timeout, interval, errF, argc = &head[0], &head[1], &head[2], &head[3]
		e.Argv = make([]string, len(rest))
		b.argvPos = b.argvPos[:0]
		for i, w := range rest {
			e.Argv[i] = w.Text
			b.argvPos = append(b.argvPos, w.Pos)
		}
	} else {
		all, _ := b.expandHead(tail, len(tail)*2)
		n := len(all)
		if n < 2 {
			b.errorf(tail[0].Pos, "%s needs <error>:<argc> at its end", kind)
			return false
		}
		argc, errF = &all[n-1], &all[n-2]
		if n >= 3 {
			interval = &all[n-3]
		}
		if n >= 4 {
			timeout = &all[n-4]
		}
		for i := 0; i < n-4; i++ {
			if !isDefault(all[i].Text) {
				b.errorf(all[i].Pos, "unexpected field %q in %s: it takes no arguments", all[i].Text, kind)
				return false
			}
		}
	}
	good := true
	if timeout != nil && !isDefault(timeout.Text) {
		n, ok := b.integer(*timeout, kind.String()+" timeout", 1, maxSeconds)
		e.Timeout, good = time.Duration(n)*time.Second, good && ok
	}
	if interval != nil && !isDefault(interval.Text) {
		n, ok := b.integer(*interval, kind.String()+" interval", 1, maxSeconds)
		e.Interval, good = time.Duration(n)*time.Second, good && ok
	}
	if !isDefault(errF.Text) {
		n, ok := b.integer(*errF, kind.String()+" error", 0, 1)
		e.Error, good = n, good && ok
	}
	if isDefault(argc.Text) {
		e.Argc = len(e.Argv)
	} else {
		n, ok := b.integer(*argc, kind.String()+" argc", 0, 1<<16)
		e.Argc, good = n, good && ok
		if ok && n != len(e.Argv) {
			if kind == EntryExec {
				b.errorf(argc.Pos, "argc is %d but %d argument(s) follow", n, len(e.Argv))
			} else {
				b.errorf(argc.Pos, "%s takes no arguments: argc must be 0, not %d", kind, n)
			}
			good = false
		}
	}
	if !good {
		return false
	}
	return true
}

func isEntryKind(k EntryKind) bool {
	return k == EntryInit || k == EntryExec || k == EntryAction || k == EntryQuit
}

// String returns the entry kind as written in a pfile.
func (k EntryKind) String() string { return string(k) }

// expandHead reads up to n fields, taking "--" as two default fields; the
// fields after the first n are returned as they are. Without "--" it
// returns sub-slices of fields; with one, head is b.head, valid until the
// next call.
func (b *Builder) expandHead(fields []Word, n int) (head, rest []Word) {
	k := min(n, len(fields))
	plain := true
	for _, w := range fields[:k] {
		if w.Text == "--" {
			plain = false
			break
		}
	}
	if plain {
		return fields[:k], fields[k:]
	}
	head = b.head[:0]
	for i, w := range fields {
		if len(head) >= n {
			rest = fields[i:]
			break
		}
		if w.Text == "--" {
			head = append(head, Word{Text: "-", Pos: w.Pos}, Word{Text: "-", Pos: Pos{File: w.Pos.File, Line: w.Pos.Line, Col: w.Pos.Col + 1}})
			continue
		}
		head = append(head, w)
	}
	b.head = head
	return head, rest
}

// The guide's limits and defaults for PS_EXEC.
const (
	defaultInterval = 60 * time.Second
	defaultFailover = 600 * time.Second
	guideMinimum    = 10 * time.Second
	maxAttempt      = 10 * time.Second
)

// monitor resolves PS_EXEC (and PS_ACTION's error) into a Monitor.
func (b *Builder) monitor(blk *Block, lib *library, exec, action *Entry) bool {
	m := &blk.Monitor
	m.Interval = exec.Interval
	if m.Interval == 0 {
		m.Interval = defaultInterval
	}
	if m.Interval < guideMinimum {
		b.warnf(exec.Pos, "interval %s is below the guide's minimum of 10 s", secs(m.Interval))
	}
	m.StopAfterStall = exec.Error == 1
	m.RetryOverOnKillFailure = action == nil || action.Error != 0
	args := exec.Argv
	argPos := func(i int) Pos {
		if i < len(b.argvPos) {
			return b.argvPos[i]
		}
		return exec.Pos
	}
	if exec.Argc < 1 {
		b.errorf(exec.Pos, "PS_EXEC of %s needs at least the failover seconds as argv[0]", blk.Name)
		return false
	}
	if lib != nil && (exec.Argc < lib.minArgc || (lib.maxArgc >= 0 && exec.Argc > lib.maxArgc)) {
		b.errorf(exec.Pos, "%s takes %s, not %d", blk.Name, argcText(lib), exec.Argc)
		return false
	}
	if m.Kind == KindWebservs && exec.Argc == 4 {
		b.errorf(exec.Pos, "%s takes %s, not 4", blk.Name, argcText(lib))
		return false
	}
	m.Failover = defaultFailover
	if !isDefault(args[0]) {
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > maxSeconds {
			b.errorf(argPos(0), "failover (argv[0]) must be a whole number of seconds, not %q", args[0])
			return false
		}
		m.Failover = time.Duration(n) * time.Second
	}
	if m.Failover < m.Interval {
		b.errorf(argPos(0), "failover %s is shorter than the interval %s: it must be at least the interval", secs(m.Failover), secs(m.Interval))
		return false
	}
	port := func(i int) bool {
		if i >= len(args) || isDefault(args[i]) {
			b.errorf(argPos(i), "%s needs a port as argv[%d]", blk.Name, i)
			return false
		}
		n, err := strconv.Atoi(args[i])
		if err != nil || n < 1 || n > 65535 {
			b.errorf(argPos(i), "port (argv[%d]) must be between 1 and 65535, not %q", i, args[i])
			return false
		}
		m.Port = n
		return true
	}
	arg := func(i int, def string) string {
		if i < len(args) && !isDefault(args[i]) {
			return args[i]
		}
		return def
	}
	switch m.Kind {
	case KindWebserv, KindSocket:
		if !port(1) {
			return false
		}
		m.Host = unbracket(arg(2, "localhost"))
	case KindWebservs:
		if !port(1) {
			return false
		}
		m.Host = unbracket(arg(2, "localhost"))
		if t := arg(3, ""); t != "" {
			n, err := strconv.Atoi(t)
			if err != nil || n < 1 || n > maxSeconds {
				b.errorf(argPos(3), "attempt timeout (argv[3]) must be a whole number of seconds, not %q", t)
				return false
			}
			m.Timeout = time.Duration(n) * time.Second
		}
		m.Path = arg(4, "/")
		if !strings.HasPrefix(m.Path, "/") {
			b.errorf(argPos(4), "HTML path (argv[4]) must start with '/', not %q", m.Path)
			return false
		}
	case KindHeartbeat:
		m.File = arg(1, "")
		if !strings.HasPrefix(m.File, "/") {
			b.errorf(argPos(1), "heartbeat file (argv[1]) must be an absolute path, not %q", m.File)
			return false
		}
	case KindListen:
		if !port(1) {
			return false
		}
		m.Address = unbracket(arg(2, ""))
		if m.Address != "" && net.ParseIP(m.Address) == nil {
			b.errorf(argPos(2), "listen address (argv[2]) must be an IP address, not %q", m.Address)
			return false
		}
	case KindChildren:
		for _, c := range args[1:] {
			if isDefault(c) {
				b.errorf(exec.Pos, "a child name in %s is empty", blk.Name)
				return false
			}
			m.Children = append(m.Children, c)
		}
	case KindCommand:
		m.File = exec.File
		m.Args = append([]string(nil), args[1:]...)
	case KindResource:
		var ok bool
		if m.Metric, ok = b.parseMetric(args[1], argPos(1)); !ok {
			return false
		}
		if m.Limit, ok = b.parseLimit(m.Metric, args[2], argPos(2)); !ok {
			return false
		}
	}
	if exec.Timeout > 0 {
		m.Timeout = exec.Timeout
	}
	if m.Timeout == 0 {
		m.Timeout = min(m.Interval, maxAttempt)
	}
	return true
}

func argcText(l *library) string {
	switch {
	case l.maxArgc < 0:
		return fmt.Sprintf("argc %d or more", l.minArgc)
	case l.minArgc == l.maxArgc:
		return fmt.Sprintf("argc %d", l.minArgc)
	case l.kind == KindWebservs:
		return "argc 5 (2 or 3 accepted)"
	default:
		return fmt.Sprintf("argc %d to %d", l.minArgc, l.maxArgc)
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%d s", int64(d/time.Second)) }

// unbracket removes the brackets of an IPv6 literal: a field list is split
// on ':', so an IPv6 address is written [::1].
func unbracket(s string) string {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return s[1 : len(s)-1]
	}
	return s
}
