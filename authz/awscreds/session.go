package awscreds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"

	"github.com/tenancykit/tenancy/internal/sessionname"
	"github.com/tenancykit/tenancy/tenant"
)

// STS limits, from the AssumeRole API reference.
const (
	maxSessionTags   = 50
	maxTagKeyLen     = 128
	maxTagValueLen   = 256
	maxSessionPolicy = 2048
)

var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)

func checkRoleARN(arn string) error {
	if !roleARN.MatchString(arn) {
		return fmt.Errorf("awscreds: %q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", arn)
	}
	return nil
}

// tagRune reports whether STS allows r in a tag key or value.
func tagRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Z, r) || unicode.IsNumber(r) || strings.ContainsRune("_.:/=+-@", r)
}

func checkTagKey(k string) error {
	switch {
	case k == "" || utf8.RuneCountInString(k) > maxTagKeyLen:
		return fmt.Errorf("tag key %q must have 1 to %d characters", k, maxTagKeyLen)
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return fmt.Errorf("tag key %q: the aws: prefix is reserved", k)
	case strings.IndexFunc(k, func(r rune) bool { return !tagRune(r) }) >= 0:
		return fmt.Errorf("tag key %q has a character STS does not allow (letters, digits, spaces and _.:/=+-@)", k)
	}
	return nil
}

// ErrTagValue is wrapped by the error for a tenant whose ID (or another tag
// value) STS would refuse as a session tag value. Such a tenant cannot get
// credentials: a changed value would not match its items' keys.
var ErrTagValue = errors.New("awscreds: value not allowed in a session tag")

func checkTags(tags map[string]string) error {
	if len(tags) > maxSessionTags {
		return fmt.Errorf("awscreds: %d session tags, STS allows %d", len(tags), maxSessionTags)
	}
	seen := make(map[string]string, len(tags))
	for k, v := range tags {
		if err := checkTagKey(k); err != nil {
			return fmt.Errorf("awscreds: %w", err)
		}
		if prev, dup := seen[strings.ToLower(k)]; dup {
			return fmt.Errorf("awscreds: tag keys %q and %q differ only in case; STS refuses that", prev, k)
		}
		seen[strings.ToLower(k)] = k
		if utf8.RuneCountInString(v) > maxTagValueLen {
			return fmt.Errorf("%w: tag %q: longer than %d characters", ErrTagValue, k, maxTagValueLen)
		}
		if strings.IndexFunc(v, func(r rune) bool { return !tagRune(r) }) >= 0 {
			return fmt.Errorf("%w: tag %q: a character STS does not allow (letters, digits, spaces and _.:/=+-@)", ErrTagValue, k)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func equalFoldASCII(a, b string) bool { return strings.EqualFold(a, b) }

func checkSessionPrefix(p string) error {
	if len(p) > 32 || strings.IndexFunc(p, func(r rune) bool { return !sessionname.Rune(r) }) >= 0 {
		return fmt.Errorf("awscreds: WithSessionPrefix: %q must be at most 32 characters of letters, digits and _+=,.@-", p)
	}
	return nil
}

// sessionName is the role session name of tenant id; message.SenderSession
// recognises a sender by it.
func sessionName(prefix, id string) string { return sessionname.For(prefix, id) }

// policyData is what a session policy template sees.
type policyData struct {
	TenantID string
	Tier     string
	TagKey   string
}

func parsePolicyTemplate(text string) (*template.Template, error) {
	tmpl, err := template.New("session-policy").Option("missingkey=error").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("awscreds: WithSessionPolicy: %w", err)
	}
	// A long tenant ID shows whether the document stays within the limit.
	if _, err := renderPolicy(tmpl, strings.Repeat("x", tenant.MaxIDLength), "", "TenantId"); err != nil {
		return nil, fmt.Errorf("awscreds: WithSessionPolicy: with a %d-character tenant ID: %w", tenant.MaxIDLength, err)
	}
	return tmpl, nil
}

// renderPolicy renders the session policy of a tenant and tier, compacted.
func renderPolicy(tmpl *template.Template, tenantID, tier, tagKey string) (string, error) {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, policyData{TenantID: tenantID, Tier: tier, TagKey: tagKey}); err != nil {
		return "", fmt.Errorf("awscreds: session policy: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, buf.Bytes()); err != nil {
		return "", fmt.Errorf("awscreds: session policy is not JSON: %w", err)
	}
	if n := utf8.RuneCount(compact.Bytes()); n > maxSessionPolicy {
		return "", fmt.Errorf("awscreds: session policy has %d characters, STS allows %d", n, maxSessionPolicy)
	}
	return compact.String(), nil
}
