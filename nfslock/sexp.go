//go:build linux

package nfslock

import "bytes"

// Holder records are S-expressions in the dialect of Jane Street's Sexplib.
// This file has the part of it that records need: atoms quoted as Sexplib's
// machine printer quotes them, and a reader for atoms and lists. The reader
// does not support comments, which Core never writes.

// sexpNode is an atom or a list.
type sexpNode struct {
	atom   string
	list   []sexpNode
	isList bool
}

// maxSexpNesting bounds how deep lists nest: a record is a list of fields,
// each field a list, and start_time's value a list inside its field.
const maxSexpNesting = 3

// appendSexpValue appends atom s as Sexplib's machine printer writes it after
// a bare atom (a field name): bare after a space, or quoted with no space.
// Like Sexplib's must_escape, it quotes s when s is empty, holds a space,
// control byte, byte >= 0x7f, one of ( ) " ; \, or "#|" or "|#" (which
// would open or close a block comment); escapes are Sexplib's too, so the
// bytes equal Core's.
func appendSexpValue(b []byte, s string) []byte {
	if !sexpNeedsQuotes(s) {
		return append(append(b, ' '), s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\t':
			b = append(b, `\t`...)
		case '\r':
			b = append(b, `\r`...)
		case '\b':
			b = append(b, `\b`...)
		default:
			if ' ' <= c && c <= '~' {
				b = append(b, c)
			} else {
				b = append(b, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
			}
		}
	}
	return append(b, '"')
}

func sexpNeedsQuotes(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c >= 0x7f, c == '(', c == ')', c == '"', c == ';', c == '\\':
			return true
		case i > 0 && (c == '|' && s[i-1] == '#' || c == '#' && s[i-1] == '|'):
			return true
		}
	}
	return false
}

// readSexp parses data as exactly one S-expression with optional whitespace
// around it. Errors wrap ErrCorrupt and give the byte offset.
func readSexp(data []byte) (sexpNode, error) {
	r := sexpReader{data: data}
	if r.skipSpace(); r.pos == len(data) {
		return sexpNode{}, corruptRecord("empty record")
	}
	v, err := r.value(0)
	if err != nil {
		return sexpNode{}, err
	}
	if r.skipSpace(); r.pos < len(data) {
		return sexpNode{}, corruptRecord("trailing data at byte %d", r.pos)
	}
	return v, nil
}

type sexpReader struct {
	data []byte
	pos  int
}

// isSexpSpace reports the bytes Sexplib skips between tokens, and a lone CR.
func isSexpSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

func endsBareAtom(c byte) bool {
	return isSexpSpace(c) || c == '(' || c == ')' || c == '"' || c == ';'
}

func (r *sexpReader) skipSpace() {
	for r.pos < len(r.data) && isSexpSpace(r.data[r.pos]) {
		r.pos++
	}
}

func (r *sexpReader) value(depth int) (sexpNode, error) {
	if r.pos == len(r.data) {
		return sexpNode{}, corruptRecord("unexpected end at byte %d", r.pos)
	}
	switch r.data[r.pos] {
	case '(':
		return r.list(depth)
	case '"':
		return r.quoted()
	case ')':
		return sexpNode{}, corruptRecord("unexpected ')' at byte %d", r.pos)
	case ';':
		return sexpNode{}, corruptRecord("comment at byte %d (not supported)", r.pos)
	}
	start := r.pos
	for r.pos < len(r.data) && !endsBareAtom(r.data[r.pos]) {
		r.pos++
	}
	atom := r.data[start:r.pos]
	if bytes.Contains(atom, []byte("#|")) || bytes.Contains(atom, []byte("|#")) {
		return sexpNode{}, corruptRecord("block comment marker in atom at byte %d (not supported)", start)
	}
	return sexpNode{atom: string(atom)}, nil
}

func (r *sexpReader) list(depth int) (sexpNode, error) {
	if depth == maxSexpNesting {
		return sexpNode{}, corruptRecord("lists nested too deep at byte %d", r.pos)
	}
	start := r.pos
	r.pos++ // '('
	node := sexpNode{isList: true}
	for {
		r.skipSpace()
		if r.pos == len(r.data) {
			return sexpNode{}, corruptRecord("unclosed list at byte %d", start)
		}
		if r.data[r.pos] == ')' {
			r.pos++
			return node, nil
		}
		v, err := r.value(depth + 1)
		if err != nil {
			return sexpNode{}, err
		}
		node.list = append(node.list, v)
	}
}

// quoted reads a quoted atom with the escapes of Sexplib's lexer: \" \\ \'
// \n \t \b \r, "\ " for a space, \DDD (decimal, at most 255), \xHH, and a
// backslash before a newline (LF or CRLF) continuing the atom after the next
// line's leading spaces and tabs. Any other backslash stands for itself, as
// in Sexplib.
func (r *sexpReader) quoted() (sexpNode, error) {
	start := r.pos
	r.pos++ // '"'
	var atom []byte
	for r.pos < len(r.data) {
		c := r.data[r.pos]
		r.pos++
		switch c {
		case '"':
			return sexpNode{atom: string(atom)}, nil
		case '\\':
			var err error
			if atom, err = r.escape(atom); err != nil {
				return sexpNode{}, err
			}
		default:
			atom = append(atom, c)
		}
	}
	return sexpNode{}, corruptRecord("unterminated quoted atom at byte %d", start)
}

// escape decodes the escape after a backslash, appending its bytes to atom.
func (r *sexpReader) escape(atom []byte) ([]byte, error) {
	rest := r.data[r.pos:]
	switch {
	case len(rest) == 0:
		return atom, nil // the caller reports the unterminated atom
	case rest[0] == '\n' || bytes.HasPrefix(rest, []byte("\r\n")):
		r.pos += bytes.IndexByte(rest, '\n') + 1
		for r.pos < len(r.data) && (r.data[r.pos] == ' ' || r.data[r.pos] == '\t') {
			r.pos++
		}
		return atom, nil
	case len(rest) >= 3 && isDigit(rest[0]) && isDigit(rest[1]) && isDigit(rest[2]):
		n := int(rest[0]-'0')*100 + int(rest[1]-'0')*10 + int(rest[2]-'0')
		if n > 255 {
			return nil, corruptRecord("escape \\%s out of range at byte %d", rest[:3], r.pos-1)
		}
		r.pos += 3
		return append(atom, byte(n)), nil
	case len(rest) >= 3 && rest[0] == 'x':
		hi, okHi := hexDigit(rest[1])
		lo, okLo := hexDigit(rest[2])
		if okHi && okLo {
			r.pos += 3
			return append(atom, hi<<4|lo), nil
		}
	}
	r.pos++
	switch c := rest[0]; c {
	case 'n':
		return append(atom, '\n'), nil
	case 't':
		return append(atom, '\t'), nil
	case 'b':
		return append(atom, '\b'), nil
	case 'r':
		return append(atom, '\r'), nil
	case '"', '\\', '\'', ' ':
		return append(atom, c), nil
	default:
		return append(atom, '\\', c), nil
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func hexDigit(c byte) (byte, bool) {
	switch {
	case isDigit(c):
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
