package dynamoguard

import (
	"errors"
	"strconv"
)

// This file reads DynamoDB key condition expressions, just far enough for the
// [Guard] to find the equalities that pin a query to a partition:
//
//	condition ::= term { AND term }
//	term      ::= "(" condition ")"
//	            | operand comparator operand
//	            | operand BETWEEN operand AND operand
//	            | begins_with "(" operand "," operand ")"
//	operand   ::= name | #placeholder | :placeholder
//
// AND, BETWEEN and begins_with are matched without regard to case. Anything
// else, OR and NOT included (DynamoDB refuses them in key conditions), is a
// syntax error, and the Guard then refuses the query as uncheckable: reading
// less than DynamoDB accepts is safe, reading more would not be.

// guardKeyEquality is one "name = :value" comparison of a key condition (or
// ":value = name"), with the operands as written: name may be a #placeholder,
// value is a :placeholder.
type guardKeyEquality struct {
	name, value string
}

// guardMaxKeyConditionDepth bounds the nesting of parentheses, so that no
// expression can make the parser recurse without limit. DynamoDB's own limit
// on an expression's length (4 KB) allows far more than any real key
// condition needs.
const guardMaxKeyConditionDepth = 32

// guardMaxKeyEqualities bounds the equalities of one key condition. A valid
// one has two at most, one per key attribute; the parser keeps them in an
// array of its own, which, unlike a slice it appended to, stays off the
// heap.
const guardMaxKeyEqualities = 8

// guardKeyConditionError says where and why a key condition could not be
// read. It names no operand: only positions, so that it can be logged.
type guardKeyConditionError struct {
	offset int
	reason string
}

func (e *guardKeyConditionError) Error() string {
	return "key condition: " + e.reason + " at offset " + strconv.Itoa(e.offset)
}

var errGuardKeyConditionEmpty = errors.New("key condition: empty")

// guardParseKeyCondition reads the key condition expr and appends its
// equalities between an attribute name and a value placeholder to dst.
// Other comparisons (BETWEEN, begins_with, <, ...) are checked for syntax
// and left out.
func guardParseKeyCondition(expr string, dst []guardKeyEquality) ([]guardKeyEquality, error) {
	p := guardKeyConditionParser{lex: guardKeyConditionLexer{src: expr}}
	p.next()
	if p.tok.kind == guardTokEOF {
		return dst, errGuardKeyConditionEmpty
	}
	if err := p.condition(0); err != nil {
		return dst, err
	}
	if p.tok.kind != guardTokEOF {
		return dst, p.unexpected()
	}
	return append(dst, p.eqs[:p.n]...), nil
}

type guardTokenKind uint8

const (
	guardTokEOF     guardTokenKind = iota
	guardTokName                   // attribute name as written: tenant_id
	guardTokNameRef                // attribute name placeholder: #pk
	guardTokValue                  // value placeholder: :v
	guardTokLParen
	guardTokRParen
	guardTokComma
	guardTokCompare // = <> < <= > >=
	guardTokInvalid
)

type guardToken struct {
	kind guardTokenKind
	text string // a substring of the expression
	pos  int
}

// guardKeyConditionLexer splits an expression into tokens that are
// substrings of it, so that reading allocates nothing.
type guardKeyConditionLexer struct {
	src string
	pos int
}

func (l *guardKeyConditionLexer) next() guardToken {
	for l.pos < len(l.src) && guardIsSpace(l.src[l.pos]) {
		l.pos++
	}
	start := l.pos
	if start == len(l.src) {
		return guardToken{kind: guardTokEOF, pos: start}
	}
	c := l.src[start]
	one := func(k guardTokenKind) guardToken {
		l.pos++
		return guardToken{kind: k, text: l.src[start:l.pos], pos: start}
	}
	switch {
	case c == '(':
		return one(guardTokLParen)
	case c == ')':
		return one(guardTokRParen)
	case c == ',':
		return one(guardTokComma)
	case c == '=':
		return one(guardTokCompare)
	case c == '<':
		l.pos++
		if l.pos < len(l.src) && (l.src[l.pos] == '=' || l.src[l.pos] == '>') {
			l.pos++
		}
		return guardToken{kind: guardTokCompare, text: l.src[start:l.pos], pos: start}
	case c == '>':
		l.pos++
		if l.pos < len(l.src) && l.src[l.pos] == '=' {
			l.pos++
		}
		return guardToken{kind: guardTokCompare, text: l.src[start:l.pos], pos: start}
	case c == '#' || c == ':':
		l.pos++
		for l.pos < len(l.src) && guardIsNameByte(l.src[l.pos]) {
			l.pos++
		}
		if l.pos == start+1 {
			return guardToken{kind: guardTokInvalid, text: l.src[start:l.pos], pos: start}
		}
		k := guardTokNameRef
		if c == ':' {
			k = guardTokValue
		}
		return guardToken{kind: k, text: l.src[start:l.pos], pos: start}
	case guardIsNameByte(c):
		for l.pos < len(l.src) && guardIsNameByte(l.src[l.pos]) {
			l.pos++
		}
		return guardToken{kind: guardTokName, text: l.src[start:l.pos], pos: start}
	default:
		// Dots and brackets (nested paths), quotes, other characters:
		// nothing a key condition may hold.
		return one(guardTokInvalid)
	}
}

// guardIsSpace reports the white space DynamoDB skips between tokens.
func guardIsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// guardIsNameByte reports whether c can be part of an attribute name written
// in an expression or of a placeholder. Only ASCII: any other name must be
// given through a #placeholder.
func guardIsNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// guardKeyConditionParser is a recursive descent parser over the grammar at
// the top of this file.
type guardKeyConditionParser struct {
	lex guardKeyConditionLexer
	tok guardToken
	eqs [guardMaxKeyEqualities]guardKeyEquality
	n   int // in eqs
}

func (p *guardKeyConditionParser) next() { p.tok = p.lex.next() }

// keyword reports whether the current token is the bare word kw (given in
// lower case), in any case.
func (p *guardKeyConditionParser) keyword(kw string) bool {
	return p.tok.kind == guardTokName && guardEqualFoldASCII(p.tok.text, kw)
}

func (p *guardKeyConditionParser) fail(reason string) error {
	return &guardKeyConditionError{offset: p.tok.pos, reason: reason}
}

func (p *guardKeyConditionParser) unexpected() error {
	switch {
	case p.tok.kind == guardTokEOF:
		return p.fail("unexpected end")
	case p.keyword("or"):
		return p.fail("OR is not allowed")
	case p.keyword("not"):
		return p.fail("NOT is not allowed")
	case p.tok.kind == guardTokInvalid:
		return p.fail("unexpected character")
	}
	return p.fail("unexpected token")
}

func (p *guardKeyConditionParser) condition(depth int) error {
	for {
		if err := p.term(depth); err != nil {
			return err
		}
		if !p.keyword("and") {
			return nil
		}
		p.next()
	}
}

func (p *guardKeyConditionParser) term(depth int) error {
	switch {
	case p.tok.kind == guardTokLParen:
		if depth >= guardMaxKeyConditionDepth {
			return p.fail("parentheses nested too deep")
		}
		p.next()
		if err := p.condition(depth + 1); err != nil {
			return err
		}
		if p.tok.kind != guardTokRParen {
			return p.unexpected()
		}
		p.next()
		return nil
	case p.keyword("begins_with"):
		p.next()
		if p.tok.kind != guardTokLParen {
			return p.unexpected()
		}
		p.next()
		if _, err := p.operand(); err != nil {
			return err
		}
		if p.tok.kind != guardTokComma {
			return p.unexpected()
		}
		p.next()
		if _, err := p.operand(); err != nil {
			return err
		}
		if p.tok.kind != guardTokRParen {
			return p.unexpected()
		}
		p.next()
		return nil
	}
	left, err := p.operand()
	if err != nil {
		return err
	}
	switch {
	case p.tok.kind == guardTokCompare:
		op, opPos := p.tok.text, p.tok.pos
		p.next()
		right, err := p.operand()
		if err != nil {
			return err
		}
		if op == "=" {
			return p.equality(left, right, opPos)
		}
		return nil
	case p.keyword("between"):
		p.next()
		if _, err := p.operand(); err != nil {
			return err
		}
		if !p.keyword("and") {
			return p.unexpected()
		}
		p.next()
		_, err := p.operand()
		return err
	}
	return p.unexpected()
}

// equality records a = b (the = at pos) when one side names an attribute
// and the other is a value placeholder. DynamoDB refuses the other pairings
// in key conditions.
func (p *guardKeyConditionParser) equality(a, b guardToken, pos int) error {
	if a.kind == guardTokValue {
		a, b = b, a
	}
	if (a.kind == guardTokName || a.kind == guardTokNameRef) && b.kind == guardTokValue {
		if p.n == len(p.eqs) {
			return &guardKeyConditionError{offset: pos, reason: "too many comparisons"}
		}
		p.eqs[p.n] = guardKeyEquality{name: a.text, value: b.text}
		p.n++
	}
	return nil
}

// operand reads a name, a #placeholder or a :placeholder. The words of the
// grammar are not names: DynamoDB reserves them.
func (p *guardKeyConditionParser) operand() (guardToken, error) {
	t := p.tok
	switch t.kind {
	case guardTokNameRef, guardTokValue:
	case guardTokName:
		if p.keyword("and") || p.keyword("between") || p.keyword("begins_with") || p.keyword("or") || p.keyword("not") {
			return t, p.unexpected()
		}
	default:
		return t, p.unexpected()
	}
	p.next()
	return t, nil
}

// guardEqualFoldASCII reports whether s equals lower (an ASCII lower-case
// word) without regard to ASCII case.
func guardEqualFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
