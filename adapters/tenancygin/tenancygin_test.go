package tenancygin_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancygin"
	"github.com/tenancykit/tenancy/internal/stacktest"
	"github.com/tenancykit/tenancy/tenant"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}

// tenantID is the ID of the tenant in c's request, "" for none.
func tenantID(c *gin.Context) string {
	tn, _ := tenant.FromContext(c.Request.Context())
	return tn.ID
}

// TestRouter: gin's pattern reaches the access log and the meter for
// every request, refused ones included, and the stack sees what the
// handler wrote, whether it is a net/http handler or writes with gin's
// own methods.
func TestRouter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler gin.HandlerFunc
	}{
		{"net/http handler", gin.WrapF(stacktest.Tenant)},
		{"String", func(c *gin.Context) { c.String(http.StatusCreated, tenantID(c)) }},
		{"Data", func(c *gin.Context) { c.Data(http.StatusCreated, "text/plain", []byte(tenantID(c))) }},
		{"Status then WriteString", func(c *gin.Context) {
			c.Status(http.StatusCreated)
			c.Writer.WriteString(tenantID(c))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := stacktest.New(t)
			engine := gin.New()
			engine.Use(newStack(t, f))
			engine.GET("/t/:tenant/orders", tc.handler)
			f.CheckRouter(t, engine, "/t/:tenant/orders")
		})
	}
}

func newStack(t *testing.T, f *stacktest.Fixture, opts ...tenancy.Option) gin.HandlerFunc {
	t.Helper()
	mw, err := tenancygin.New(append(f.Options(t), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

// TestRefusedRunsNoLaterHandler: a request the stack refuses runs neither
// the middleware after it nor the route's handler, routed or not.
func TestRefusedRunsNoLaterHandler(t *testing.T) {
	f := stacktest.New(t)
	engine := gin.New()
	ran := 0
	engine.Use(newStack(t, f), func(c *gin.Context) { ran++ })
	engine.GET("/t/:tenant/orders", func(c *gin.Context) { ran++ })
	for _, path := range []string{"/t/acme/orders", "/nowhere"} {
		if resp := stacktest.Do(engine, http.MethodGet, path, ""); resp.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d, want 401", path, resp.Code)
		}
	}
	if ran != 0 {
		t.Errorf("%d handlers ran for refused requests", ran)
	}
}

// TestWriter: while the handlers run, c.Writer is the package's, with the
// semantics of gin's writer; the stack sees the status and bytes written
// through it, flushes reach the server's writer, and c.Writer is gin's
// again once the stack has returned.
func TestWriter(t *testing.T) {
	f := stacktest.New(t)
	engine := gin.New()
	var before, inside, after gin.ResponseWriter
	engine.Use(func(c *gin.Context) { // outside the stack, to see c.Writer around it
		before = c.Writer
		c.Next()
		after = c.Writer
	}, newStack(t, f))
	engine.GET("/t/:tenant/orders", func(c *gin.Context) {
		w := c.Writer
		inside = w
		check := func(step string, status, size int, written bool) {
			t.Helper()
			if w.Status() != status || w.Size() != size || w.Written() != written {
				t.Errorf("%s: Status, Size, Written = %d, %d, %v; want %d, %d, %v", step, w.Status(), w.Size(), w.Written(), status, size, written)
			}
		}
		check("at first", http.StatusOK, -1, false)
		c.Status(http.StatusAccepted)
		check("after c.Status", http.StatusAccepted, -1, false)
		w.WriteHeaderNow()
		check("after WriteHeaderNow", http.StatusAccepted, 0, true)
		w.WriteHeader(http.StatusInternalServerError)
		check("after a second WriteHeader", http.StatusAccepted, 0, true)
		w.WriteString("ab")
		w.Write([]byte("c"))
		check("after writes", http.StatusAccepted, 3, true)
		w.Flush()
		if _, _, err := w.Hijack(); err == nil {
			t.Error("Hijack after the body was written succeeded")
		}
		if w.Pusher() != nil {
			t.Error("a Pusher from a writer that cannot push")
		}
	})
	engine.GET("/t/:tenant/empty", func(c *gin.Context) { c.Status(http.StatusNoContent) })

	acme := f.Issuer.MustMint("acme", "basic")
	req := httptest.NewRequest(http.MethodGet, "/t/acme/orders", nil)
	req.Header.Set("Authorization", "Bearer "+acme)
	rec := httptest.NewRecorder()
	engine.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted || rec.Body.String() != "abc" || !rec.Flushed {
		t.Errorf("client got %d %q, flushed %v; want 202 \"abc\", flushed", rec.Code, rec.Body, rec.Flushed)
	}
	if inside == nil || inside == before {
		t.Fatal("the handler wrote with gin's writer, not the package's")
	}
	if after != before {
		t.Errorf("c.Writer after the stack = %T, want gin's again", after)
	}

	// A status set and never written goes out when the handlers are done,
	// through the stack.
	if resp := stacktest.Do(engine, http.MethodGet, "/t/acme/empty", acme); resp.Code != http.StatusNoContent {
		t.Errorf("c.Status(204) alone: client got %d", resp.Code)
	}

	lines := f.Lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d access lines for 2 requests:\n%s", len(lines), f.Logs)
	}
	for i, want := range []struct{ status, bytes float64 }{{202, 3}, {204, 0}} {
		if lines[i]["status"] != want.status || lines[i]["bytes"] != want.bytes {
			t.Errorf("line %d: status %v, bytes %v; want %v, %v", i, lines[i]["status"], lines[i]["bytes"], want.status, want.bytes)
		}
	}
}

// TestHijack: a handler takes the connection over through c.Writer, and
// the access line says so.
func TestHijack(t *testing.T) {
	f := stacktest.New(t)
	engine := gin.New()
	engine.Use(newStack(t, f))
	engine.GET("/t/:tenant/upgrade", func(c *gin.Context) {
		conn, rw, err := c.Writer.Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		if !c.Writer.Written() || c.Writer.Size() != 0 {
			t.Errorf("after Hijack: Written %v, Size %d; want true, 0", c.Writer.Written(), c.Writer.Size())
		}
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nhello " + tenantID(c))
		rw.Flush()
	})
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		engine.ServeHTTP(w, r)
	}))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /t/acme/upgrade HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer %s\r\n\r\n", f.Issuer.MustMint("acme", "basic"))
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 101 ") || !strings.HasSuffix(string(got), "\r\n\r\nhello acme") {
		t.Errorf("client read %q, want what the handler wrote on the hijacked connection", got)
	}
	<-done
	if lines := f.Lines(t); len(lines) != 1 || lines[0]["status"] != 101.0 {
		t.Errorf("access lines %v, want one with status 101", lines)
	}
}

// TestHTTP2: over HTTP/2, c.Writer's Pusher and CloseNotify are the
// connection's.
func TestHTTP2(t *testing.T) {
	f := stacktest.New(t)
	engine := gin.New()
	engine.Use(newStack(t, f))
	canPush, notifies := false, false
	engine.GET("/t/:tenant/orders", func(c *gin.Context) {
		canPush = c.Writer.Pusher() != nil
		notifies = c.Writer.CloseNotify() != nil
	})
	srv := httptest.NewUnstartedServer(engine)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/t/acme/orders", nil)
	req.Header.Set("Authorization", "Bearer "+f.Issuer.MustMint("acme", "basic"))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || !canPush || !notifies {
		t.Errorf("HTTP/%d %d, Pusher %v, CloseNotify %v; want HTTP/2 200 and both", resp.ProtoMajor, resp.StatusCode, canPush, notifies)
	}
}

// TestNoRoute: gin runs the engine's middleware for a path with no route
// and for a method the route does not serve, and the stack logs those with
// the route ""; gin's redirects bypass the middleware.
func TestNoRoute(t *testing.T) {
	for _, tc := range []struct {
		name         string
		setup        func(*gin.Engine)
		method, path string
		status       int
		body         string
		lines        int
		bytes        float64 // -1: not checked
	}{
		{"no route", nil, http.MethodGet, "/nowhere", 404, "404 page not found", 1, 0},
		{"NoRoute handler", func(e *gin.Engine) { e.NoRoute(func(c *gin.Context) { c.String(404, "none") }) }, http.MethodGet, "/nowhere", 404, "none", 1, 4},
		{"method not allowed", func(e *gin.Engine) { e.HandleMethodNotAllowed = true }, http.MethodPost, "/t/acme/orders", 405, "405 method not allowed", 1, 0},
		{"trailing slash redirect", nil, http.MethodGet, "/t/acme/orders/", 301, "", 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := stacktest.New(t)
			engine := gin.New()
			if tc.setup != nil {
				tc.setup(engine)
			}
			engine.Use(newStack(t, f))
			engine.GET("/t/:tenant/orders", gin.WrapF(stacktest.Tenant))
			resp := stacktest.Do(engine, tc.method, tc.path, f.Issuer.MustMint("acme", "basic"))
			if resp.Code != tc.status || tc.body != "" && resp.Body.String() != tc.body {
				t.Errorf("client got %d %q, want %d %q", resp.Code, resp.Body, tc.status, tc.body)
			}
			if f.Logs.String() == "" {
				if tc.lines != 0 {
					t.Fatal("no access line")
				}
				return
			}
			lines := f.Lines(t)
			if len(lines) != tc.lines {
				t.Fatalf("%d access lines, want %d:\n%s", len(lines), tc.lines, f.Logs)
			}
			l := lines[0]
			if l["route"] != "" || l["status"] != float64(tc.status) || tc.bytes >= 0 && l["bytes"] != tc.bytes {
				t.Errorf("access line: route %q, status %v, bytes %v; want \"\", %d, %v", l["route"], l["status"], l["bytes"], tc.status, tc.bytes)
			}
		})
	}
}

// TestRouteGivenWins: a route given with tenancy.WithRoute is the one
// logged, over gin's.
func TestRouteGivenWins(t *testing.T) {
	f := stacktest.New(t)
	engine := gin.New()
	engine.Use(newStack(t, f, tenancy.WithRoute(func(*http.Request) string { return "orders" })))
	engine.GET("/t/:tenant/orders", gin.WrapF(stacktest.Tenant))
	stacktest.Do(engine, http.MethodGet, "/t/acme/orders", f.Issuer.MustMint("acme", "basic"))
	if lines := f.Lines(t); len(lines) != 1 || lines[0]["route"] != "orders" {
		t.Errorf("access lines %v, want one with the route given", lines)
	}
}

func TestNewRefusesMistakes(t *testing.T) {
	if _, err := tenancygin.New(); err == nil || !strings.Contains(err.Error(), "at least one part") {
		t.Errorf("New without parts = %v, want tenancy.New's error", err)
	}
	if _, err := tenancygin.New(tenancy.WithMeter(nil)); err == nil || !strings.Contains(err.Error(), "WithMeter") {
		t.Errorf("New(WithMeter(nil)) = %v, want an error naming WithMeter", err)
	}
}

// TestPanic: a handler's panic goes through the stack, which logs a 500,
// to a recovering middleware outside it, which finds gin's writer in
// c.Writer again.
func TestPanic(t *testing.T) {
	f := stacktest.New(t)
	engine := gin.New()
	restored := false
	engine.Use(func(c *gin.Context) {
		w := c.Writer
		defer func() {
			if recover() != nil {
				restored = c.Writer == w
				c.AbortWithStatus(http.StatusInternalServerError)
			}
		}()
		c.Next()
	}, newStack(t, f))
	engine.GET("/t/:tenant/orders", func(c *gin.Context) { panic("out of orders") })
	resp := stacktest.Do(engine, http.MethodGet, "/t/acme/orders", f.Issuer.MustMint("acme", "basic"))
	if resp.Code != http.StatusInternalServerError || !restored {
		t.Errorf("client got %d, c.Writer gin's again %v; want 500, true", resp.Code, restored)
	}
	if lines := f.Lines(t); len(lines) != 1 || lines[0]["status"] != 500.0 {
		t.Errorf("access lines %v, want one with status 500", lines)
	}
}
