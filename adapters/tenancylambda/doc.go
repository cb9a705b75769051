// Package tenancylambda serves the tenancy stack on AWS Lambda behind API
// Gateway: the handler a server would run, stack.Wrap(mux), answers the
// proxy events of REST APIs (payload version 1.0) and HTTP APIs (1.0 and
// 2.0), each in the response format of its version.
//
// Each event becomes the *http.Request a server would have read: method,
// path and query, headers (a REST API's multi-value ones; an HTTP API's
// cookies as a Cookie header), the body (decoded from base64 when the
// event says so), Host from the API's domain name, RemoteAddr from the
// client's source IP, and the invocation's context. Two headers are set
// for the access log: X-Request-Id ([WithRequestIDHeader]), to API
// Gateway's request ID (requestContext.requestId, the one its own logs
// carry), replacing any the client sent; and, for a request without a W3C
// traceparent, a
// traceparent made from the X-Ray trace header (API Gateway's
// X-Amzn-Trace-Id, else the Lambda invocation's), so that every log line
// of the request carries its X-Ray trace ID, in W3C form. The response is
// buffered and returned whole: text as it is, other content in base64.
//
// # Wiring
//
// Trusting the authorizer API Gateway ran (below), with the tenant from
// its claims:
//
//	logger := slog.New(logging.NewHandler(logging.NewJSONHandler(os.Stdout, nil)))
//	usage, err := meter.New("notes", meter.NewJSONLines(os.Stdout),
//		meter.WithMeters(meter.HTTPMeters()...), meter.WithoutLoop())
//	...
//	stack, err := tenancy.New(
//		tenancy.WithAccessLog(logger),
//		tenancy.WithMeter(usage),
//		tenancy.WithResolver(tenancylambda.Authorizer(authz.Cognito(), nil, tenant.Tier{})),
//	)
//	...
//	h, err := tenancylambda.New(stack.Wrap(mux), tenancylambda.WithRecorder(usage))
//	...
//	lambda.Start(h)
//
// Verifying the token again in the function, with authz:
//
//	verifier, err := authz.NewVerifier(ctx, issuer,
//		authz.WithAudience(clientID),
//		authz.WithJWKSURL(issuer+"/.well-known/jwks.json"))
//	...
//	stack, err := tenancy.New(
//		tenancy.WithAccessLog(logger),
//		tenancy.WithMeter(usage),
//		tenancy.WithAuthz(verifier),
//	)
//
// Build the stack and the Handler once, in main, before lambda.Start:
// every invocation of the environment shares them, and the verifier's
// keys and its cache of verified tokens. With [WithRecorder], the usage of
// each invocation is delivered before it returns (meter.Recorder.FlushAll):
// an environment may be frozen or ended between invocations.
//
// # Re-verify or trust the authorizer
//
// When API Gateway's JWT, Cognito or Lambda authorizer has verified the
// caller, the function can trust what it verified: [Authorizer] takes the
// tenant from the authorizer's claims or context in the event, with no
// token to check, no key to fetch, nothing at cold start. Do so only when
// the function can be invoked by API Gateway alone, with that authorizer
// on every route: its resource policy lets in that API and no other
// principal, and it has no function URL. Anyone else allowed to invoke it
// writes the event, authorizer claims included, and names any tenant.
//
// Verify the token again, with authz (tenancy.WithAuthz), when the
// function has other invokers (another service, a function URL, a test
// harness with lambda:InvokeFunction), when the authorizer is not on every
// route, or for defence in depth. Configure the verifier with
// authz.WithJWKSURL: it then makes no OIDC discovery round trip at cold
// start, only the JWK Set fetch, which the environment's later
// invocations share, and verified tokens are cached until they expire.
//
// # Message event sources
//
// A function that consumes messages hands them to the stack's message
// handler (tenancy's Stack.WrapMessages) through [NewSQS],
// [NewEventBridge] or [NewKinesis]; the trust mode establishes each message's tenant, as
// it does for a worker.
//
// SQS: [SQSHandler.Handle] answers an SQS event with a partial batch
// response; give the event source mapping ReportBatchItemFailures, else
// Lambda deletes the whole batch, failures and all. Each record becomes a
// message.Message as message/sqsqueue maps a received message (ID the
// messageId, Source the queue's name, Deliveries the
// ApproximateReceiveCount, SenderID the SenderId for
// message.SenderSession). An acked record is deleted by Lambda; a
// deferred one is a batch item failure, with [WithSQSClient] hidden for
// its delay first; a rejected one goes to [WithSQSDeadLetterQueue] with
// its reason, or without one is a batch item failure whose reason is
// logged, for the queue's redrive policy to dead-letter after
// maxReceiveCount receives (which counts deferrals too: set it high); a
// failed one is a batch item failure.
//
//	sh, err := tenancylambda.NewSQS(stack.WrapMessages(handler),
//		tenancylambda.WithSQSClient(sqs.NewFromConfig(cfg)),
//		tenancylambda.WithSQSDeadLetterQueue(deadLetterURL))
//	lambda.Start(sh.Handle)
//
// EventBridge: events carry no attributes, so a producer puts the message
// in the event's detail as an envelope of its attributes and its body
// exactly as signed ([EventBridgeDetail]) and the function reads it back
// ([EventBridgeMessage]). Lambda invokes such a function asynchronously:
// an error makes it retry (twice by default), then send the event to the
// function's on-failure destination, and drop it when there is none. So
// [EventBridgeHandler.Handle] returns nil for an acked event and for one
// rejected into [WithEventBridgeDeadLetterQueue], and an error for a
// deferred one (Lambda's retry delay, not the deferral's), a failed one
// and a rejected one without a dead-letter queue (its reason then reaches
// the on-failure destination). Give the function an on-failure
// destination.
//
// Kinesis: [KinesisHandler.Handle] answers the events of a Kinesis event
// source mapping (FunctionResponseTypes ReportBatchItemFailures). Each
// record becomes the message a kinesisstream.Consumer would make of it:
// kinesisstream's envelope for body and attributes, ID shardId/sequence,
// Source the stream's name, Deliveries 0. Lambda resumes a shard from the
// first record reported, so a deferred or failed record stops the rest of
// its shard's batch, and the records after it come again. A deferral is
// retried at Lambda's pace, not after its delay, and counts against
// MaximumRetryAttempts: keep it at -1 (the default) so that a deferred
// record never reaches the on-failure destination. A rejected record is
// dead-lettered with [WithKinesisDeadLetter] (a kinesisstream.Publisher to
// another stream); without it, the record is reported as a failure with
// its reason logged, and blocks its shard until MaximumRetryAttempts or
// MaximumRecordAgeInSeconds, after which the on-failure destination gets
// the record's location, not its data.
package tenancylambda
