package logging_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/logging"
)

func TestHandlerRedactedKeyNames(t *testing.T) {
	logger, buf := newLogger(logging.WithRedactedKeys("Pässwort", "session_id", "X-Custom-Auth"))
	keys := map[string]bool{ // key: redacted?
		"authorization": true, "Authorization": true, "AUTHORIZATION": true, "Set-Cookie": true, "set_cookie": true,
		"X-API-KEY": true, "Api_Key": true, "APIKey": true, "apiKey": true, "ACCESS_TOKEN": true, "accessToken": true, "Token": true,
		"SessionToken": true, "session_token": true, "session-token": true, "sessiontoken": true, "AWS_SESSION_TOKEN": true,
		"aws_secret_access_key": true, "AWS_SECRET_ACCESS_KEY": true, "SecretAccessKey": true, "secret-access-key": true,
		"x-amz-security-token": true, "X-Amz-Security-Token": true, "X-Amz-Signature": true,
		"bearer": true, "Bearer": true, "BEARER": true, "private_key": true, "PrivateKey": true,
		"clientSecret": true, "_token_": true, "refresh--token": true,
		"pässwort": true, "PÄSSWORT": true, "Päss_Wort": true, "Session_ID": true, "sessionID": true, "x_custom_auth": true,
		"userID": false, "tokens": false, "status": false, "Secretary": false, "": false, "authorizations": false,
		"AccessKeyID": false, "aws_access_key_id": false, "session": false, "bearer_type": false, "token.type": false,
		"X-Amz-Credential": false, "-": false, "__": false, "order": false,
	}
	var attrs []slog.Attr
	for k := range keys {
		attrs = append(attrs, slog.String(k, "v-"+k))
	}
	logger.LogAttrs(context.Background(), slog.LevelInfo, "m", attrs...)
	rec := decodeOne(t, buf.String())
	for k, redacted := range keys {
		want := "v-" + k
		if redacted {
			want = logging.Redacted
		}
		if rec[k] != want {
			t.Errorf("%q = %q, want %q", k, rec[k], want)
		}
	}
}

// TestDefaultRedactedKeys changes the returned slice: neither a later call
// nor a handler sees the change.
func TestDefaultRedactedKeys(t *testing.T) {
	keys := logging.DefaultRedactedKeys()
	for _, k := range []string{"authorization", "password", "aws_secret_access_key", "session_token", "x-amz-security-token", "bearer"} {
		if !slices.Contains(keys, k) {
			t.Errorf("DefaultRedactedKeys() lacks %q", k)
		}
	}
	for i := range keys {
		keys[i] = "changed"
	}
	if again := logging.DefaultRedactedKeys(); slices.Contains(again, "changed") || !slices.Contains(again, "password") {
		t.Errorf("DefaultRedactedKeys() = %q after changing an earlier result", again)
	}
	logger, buf := newLogger()
	logger.Info("m", "password", "p", "changed", "c")
	want := map[string]any{"level": "INFO", "msg": "m", "password": logging.Redacted, "changed": "c"}
	if diff := cmp.Diff(want, decodeOne(t, buf.String())); diff != "" {
		t.Errorf("line (-want +got):\n%s", diff)
	}
}
