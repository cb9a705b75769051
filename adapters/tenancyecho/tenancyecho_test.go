package tenancyecho_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancyecho"
	"github.com/tenancykit/tenancy/internal/stacktest"
	"github.com/tenancykit/tenancy/tenant"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tenantID is the ID of the tenant in c's request, "" for none.
func tenantID(c echo.Context) string {
	tn, _ := tenant.FromContext(c.Request().Context())
	return tn.ID
}

// TestRouter: echo's path reaches the access log and the meter for every
// request, refused ones included, and the stack sees what the handler
// wrote, whether it is a net/http handler or writes with echo's own
// methods.
func TestRouter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler echo.HandlerFunc
	}{
		{"net/http handler", echo.WrapHandler(http.HandlerFunc(stacktest.Tenant))},
		{"String", func(c echo.Context) error { return c.String(http.StatusCreated, tenantID(c)) }},
		{"Blob", func(c echo.Context) error {
			return c.Blob(http.StatusCreated, echo.MIMETextPlain, []byte(tenantID(c)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := stacktest.New(t)
			e := echo.New()
			e.Use(newStack(t, f))
			e.GET("/t/:tenant/orders", tc.handler)
			f.CheckRouter(t, e, "/t/:tenant/orders")
		})
	}
}

func newStack(t *testing.T, f *stacktest.Fixture, opts ...tenancy.Option) echo.MiddlewareFunc {
	t.Helper()
	mw, err := tenancyecho.New(append(f.Options(t), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

// TestHandlerError: an error the handler returns is written by echo's
// error handler inside the stack, so the access line has the status and
// the bytes the client got, and middleware outside sees no error.
func TestHandlerError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"HTTPError", echo.NewHTTPError(http.StatusConflict, "order exists"), http.StatusConflict},
		{"other error", errors.New("database on fire"), http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := stacktest.New(t)
			e := echo.New()
			var outside []error
			e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
				return func(c echo.Context) error {
					err := next(c)
					outside = append(outside, err)
					return err
				}
			})
			e.Use(newStack(t, f))
			e.GET("/t/:tenant/orders", func(c echo.Context) error { return tc.err })

			resp := stacktest.Do(e, http.MethodGet, "/t/acme/orders", f.Issuer.MustMint("acme", "basic"))
			if resp.Code != tc.status {
				t.Errorf("client got %d, want %d", resp.Code, tc.status)
			}
			if len(outside) != 1 || outside[0] != nil {
				t.Errorf("middleware outside the stack saw %v, want one nil error", outside)
			}
			lines := f.Lines(t)
			if len(lines) != 1 {
				t.Fatalf("%d access lines for 1 request:\n%s", len(lines), f.Logs)
			}
			if lines[0]["status"] != float64(tc.status) || lines[0]["bytes"] != float64(resp.Body.Len()) || lines[0]["route"] != "/t/:tenant/orders" {
				t.Errorf("access line: status %v, bytes %v, route %v; want %d, %d, the route's", lines[0]["status"], lines[0]["bytes"], lines[0]["route"], tc.status, resp.Body.Len())
			}
		})
	}
}

// TestRefused: a request the stack refuses runs neither the middleware
// after it nor the handler; echo's Response is committed with the
// refusal's status, so echo writes nothing more.
func TestRefused(t *testing.T) {
	f := stacktest.New(t)
	e := echo.New()
	errorsHandled := 0
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		errorsHandled++
		e.DefaultHTTPErrorHandler(err, c)
	}
	var committed []bool
	var statuses []int
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			committed = append(committed, c.Response().Committed)
			statuses = append(statuses, c.Response().Status)
			return err
		}
	})
	ran := 0
	e.Use(newStack(t, f), func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ran++
			return next(c)
		}
	})
	e.GET("/t/:tenant/orders", func(c echo.Context) error {
		ran++
		return nil
	})
	for _, path := range []string{"/t/acme/orders", "/nowhere"} {
		resp := stacktest.Do(e, http.MethodGet, path, "")
		if resp.Code != http.StatusUnauthorized || strings.Contains(resp.Body.String(), `"message"`) {
			t.Errorf("GET %s without a token: %d %q, want 401 and the stack's body only", path, resp.Code, resp.Body)
		}
	}
	if ran != 0 || errorsHandled != 0 {
		t.Errorf("%d handlers ran and echo handled %d errors for refused requests, want none", ran, errorsHandled)
	}
	for i := range committed {
		if !committed[i] || statuses[i] != http.StatusUnauthorized {
			t.Errorf("request %d: echo's Response committed %v with %d, want committed with 401", i, committed[i], statuses[i])
		}
	}
}

// TestResponse: while the handler runs, c.Response() writes through the
// stack, and flushes reach the server's writer; afterwards c.Response()
// is echo's again, with the writer it had and what the handler wrote.
func TestResponse(t *testing.T) {
	f := stacktest.New(t)
	e := echo.New()
	var before, inside, after *echo.Response
	var writerBefore, writerAfter http.ResponseWriter
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			before, writerBefore = c.Response(), c.Response().Writer
			err := next(c)
			after, writerAfter = c.Response(), c.Response().Writer
			return err
		}
	})
	e.Use(newStack(t, f))
	e.GET("/t/:tenant/orders", func(c echo.Context) error {
		inside = c.Response()
		if st := c.Response().Status; st != http.StatusOK {
			t.Errorf("Response.Status before a write = %d, want 200 as echo's", st)
		}
		c.Response().WriteHeader(http.StatusAccepted)
		c.Response().Write([]byte("abc"))
		c.Response().Flush()
		return nil
	})

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/t/acme/orders", nil)
	req.Header.Set("Authorization", "Bearer "+f.Issuer.MustMint("acme", "basic"))
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted || rec.Body.String() != "abc" || !rec.Flushed {
		t.Errorf("client got %d %q, flushed %v; want 202 \"abc\", flushed", rec.Code, rec.Body, rec.Flushed)
	}
	if inside == nil || inside == before {
		t.Fatal("the handler wrote with echo's Response, not one around the stack's writer")
	}
	if after != before || writerAfter != writerBefore {
		t.Error("c.Response() after the stack is not echo's, with the writer it had")
	}
	if !after.Committed || after.Status != http.StatusAccepted || after.Size != 3 {
		t.Errorf("echo's Response: committed %v, status %d, size %d; want what the handler wrote", after.Committed, after.Status, after.Size)
	}
	if lines := f.Lines(t); len(lines) != 1 || lines[0]["status"] != 202.0 || lines[0]["bytes"] != 3.0 {
		t.Errorf("access lines %v, want one with status 202, bytes 3", lines)
	}
}

// TestHijack: a handler takes the connection over through c.Response(),
// and the access line says so.
func TestHijack(t *testing.T) {
	f := stacktest.New(t)
	e := echo.New()
	e.Use(newStack(t, f))
	e.GET("/t/:tenant/upgrade", func(c echo.Context) error {
		conn, rw, err := c.Response().Hijack()
		if err != nil {
			return err
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nhello " + tenantID(c))
		return rw.Flush()
	})
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		e.ServeHTTP(w, r)
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

// TestNoRoute: echo runs the middleware given to e.Use for a request no
// route serves; the route is "" for a path with no route and for a method
// the path's routes do not serve, and a RouteNotFound handler's own path.
func TestNoRoute(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		status       int
		route        string
	}{
		{http.MethodGet, "/nowhere", http.StatusNotFound, ""},
		{http.MethodPost, "/t/acme/orders", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/api/nowhere", http.StatusTeapot, "/api/*"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			f := stacktest.New(t)
			e := echo.New()
			e.Use(newStack(t, f))
			e.GET("/t/:tenant/orders", echo.WrapHandler(http.HandlerFunc(stacktest.Tenant)))
			e.RouteNotFound("/api/*", func(c echo.Context) error { return c.String(http.StatusTeapot, "no such API") })
			resp := stacktest.Do(e, tc.method, tc.path, f.Issuer.MustMint("acme", "basic"))
			if resp.Code != tc.status {
				t.Errorf("client got %d, want %d", resp.Code, tc.status)
			}
			lines := f.Lines(t)
			if len(lines) != 1 {
				t.Fatalf("%d access lines for 1 request:\n%s", len(lines), f.Logs)
			}
			if l := lines[0]; l["route"] != tc.route || l["status"] != float64(tc.status) || l["bytes"] != float64(resp.Body.Len()) {
				t.Errorf("access line: route %q, status %v, bytes %v; want %q, %d, %d", l["route"], l["status"], l["bytes"], tc.route, tc.status, resp.Body.Len())
			}
		})
	}
}

// TestRouteGivenWins: a route given with tenancy.WithRoute is the one
// logged, over echo's.
func TestRouteGivenWins(t *testing.T) {
	f := stacktest.New(t)
	e := echo.New()
	e.Use(newStack(t, f, tenancy.WithRoute(func(*http.Request) string { return "orders" })))
	e.GET("/t/:tenant/orders", echo.WrapHandler(http.HandlerFunc(stacktest.Tenant)))
	stacktest.Do(e, http.MethodGet, "/t/acme/orders", f.Issuer.MustMint("acme", "basic"))
	if lines := f.Lines(t); len(lines) != 1 || lines[0]["route"] != "orders" {
		t.Errorf("access lines %v, want one with the route given", lines)
	}
}

func TestNewRefusesMistakes(t *testing.T) {
	if _, err := tenancyecho.New(); err == nil || !strings.Contains(err.Error(), "at least one part") {
		t.Errorf("New without parts = %v, want tenancy.New's error", err)
	}
	if _, err := tenancyecho.New(tenancy.WithMeter(nil)); err == nil || !strings.Contains(err.Error(), "WithMeter") {
		t.Errorf("New(WithMeter(nil)) = %v, want an error naming WithMeter", err)
	}
}

// TestPanic: a handler's panic goes through the stack, which logs a 500,
// to a recovering middleware outside it, which finds echo's Response in
// c.Response() again.
func TestPanic(t *testing.T) {
	f := stacktest.New(t)
	e := echo.New()
	restored := false
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			resp := c.Response()
			defer func() {
				if recover() != nil {
					restored = c.Response() == resp
					err = echo.NewHTTPError(http.StatusInternalServerError)
				}
			}()
			return next(c)
		}
	})
	e.Use(newStack(t, f))
	e.GET("/t/:tenant/orders", func(c echo.Context) error { panic("out of orders") })
	resp := stacktest.Do(e, http.MethodGet, "/t/acme/orders", f.Issuer.MustMint("acme", "basic"))
	if resp.Code != http.StatusInternalServerError || !restored {
		t.Errorf("client got %d, c.Response() echo's again %v; want 500, true", resp.Code, restored)
	}
	if lines := f.Lines(t); len(lines) != 1 || lines[0]["status"] != 500.0 {
		t.Errorf("access lines %v, want one with status 500", lines)
	}
}
