// Package logging makes every log line of a multi-tenant service say which
// tenant, user, request and trace it belongs to, without handlers passing
// any of it by hand; it writes one access line per request and audit
// events, and keeps secrets out of all of them. It works over whichever
// [slog.Handler] the service already uses (JSON to stdout for CloudWatch,
// the OpenTelemetry bridge, ...). For JSON, [NewJSONHandler] writes the
// bytes [slog.NewJSONHandler] writes, in less time: under a Handler and the
// access log it encodes their fields directly, without a [slog.Record].
//
// [NewHandler] wraps that handler. Every record logged with a context gets
// tenant_id, tenant_tier and user_id from [tenant.FromContext], request_id
// from [RequestIDFromContext] and trace_id and span_id from the
// OpenTelemetry span context, when known, always at the top level (inside
// a logger's groups too), so that one query finds every line of a tenant.
// The field names are a stable schema: see the Key... constants and
// docs/logging.md, which also has CloudWatch Logs Insights queries for the
// questions an incident asks.
//
// The Handler writes [Redacted] instead of a secret it can recognise, in a
// record's attributes, in groups at any depth, and in the attributes of
// With and [WithAttrs]:
//
//   - the value under a key of [DefaultRedactedKeys] or [WithRedactedKeys].
//     Keys are compared whole, lower case and without '-' and '_', so
//     session_token also stands for SessionToken and SESSION-TOKEN, but not
//     for X-Session-Token;
//   - a string, an error's text or a message that holds something shaped
//     like a JSON Web Token, under any key;
//   - inside a value logged with [slog.Any] or returned by a
//     [slog.LogValuer]: map entries under sensitive keys (url.Values,
//     http.Header, map[string]string, map[string]any, any map with string
//     keys); token-shaped strings in maps, slices, arrays and []byte; and
//     the fields of structs and pointers to structs whose Go or JSON name
//     is sensitive or whose value is token-shaped. Such a struct is written
//     as a group of its fields in encoding/json's order and names, without
//     its unexported fields. An aws.Credentials keeps its AccessKeyID,
//     which names a key without granting anything (add
//     WithRedactedKeys("access_key_id") to hide it too), and never shows
//     its SecretAccessKey or SessionToken;
//   - a *url.URL or url.URL is written as a string, its password as xxxxx
//     (as by [url.URL.Redacted]), the values of query and fragment
//     parameters with sensitive names or token-shaped values replaced, and
//     token-shaped path segments replaced.
//
// Values are walked ten maps, slices, pointers or structs deep; below that
// a part that could hold a string is replaced whole. A type that marshals
// itself (json.Marshaler, encoding.TextMarshaler) decides what it writes
// and is not walked, and what a String method returns is not searched.
// Values with nothing to redact are written unchanged, except URLs, always
// written as strings.
//
// Its level can differ per tenant: [Levels] turns on debug for one tenant,
// at run time, while the others stay at info.
//
// [AccessLog] is the outermost middleware. It keeps a valid incoming
// X-Request-ID or makes one, echoes it, puts it in the context, and when
// the request ends logs method, route, status, bytes, duration_ms and
// remote_ip together with what the layers inside found: the tenant, and
// which layer refused the request and why (tenant.Reject). A 401 or 429 line thus names the tenant whenever authz found one. An
// authz refusal is also written as an audit event by the [Auditor];
// handlers write their own with [Audit].
//
// On ECS or Fargate, [ECSMetadata] reads the cluster, task, task definition
// and container once at start; pass them to [WithAttrs] so that every line
// says which deployment wrote it.
//
// Wiring, once at start-up:
//
//	json := logging.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug})
//	levels := logging.NewLevels(slog.LevelInfo)
//	logger := slog.New(logging.NewHandler(json,
//		logging.WithLevels(levels),
//		logging.WithAttrs(logging.ECSMetadata(ctx)...),
//	))
//	slog.SetDefault(logger)
//	logging.SetDefaultAuditor(logging.NewAuditor(auditJSON)) // its own stream
//
//	verifier, err := authz.NewVerifier(ctx, issuerURL, authz.WithAudience(audience))
//	...
//	limiter, err := throttle.New(tenant.DefaultTiers, limits)
//	...
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /orders/{id}", getOrder) // calls slog.InfoContext(r.Context(), ...)
//
//	stack, err := tenancy.New(
//		tenancy.WithAccessLog(logger), // outermost
//		tenancy.WithAuthz(verifier),
//		tenancy.WithThrottle(limiter),
//	)
//	...
//	http.ListenAndServe(":8080", stack.Wrap(mux))
//
// The stack gives the access line the route pattern, for refused requests
// too. Tracing middleware such as otelhttp goes outside the stack, so that
// the access line carries the request's trace_id.
package logging
