package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is what Client.Receipt returns for a message the node has not
// seen.
var ErrNotFound = errors.New("not found")

// DefaultTimeout bounds every call whose context has no deadline: a node
// that accepts a connection and never answers (stopped, wedged, or a port
// held by something else) must not hang its caller for ever. Calls that
// wait on the server by design get their waiting time on top: Receipt its
// wait, Load the time its schedule takes. A caller that wants another bound
// passes a context with a deadline, which then rules alone.
const DefaultTimeout = 10 * time.Second

// DialTimeout bounds connecting to a node in the default client's
// transport: the nodes are local, so a connect that takes longer will not
// succeed.
const DialTimeout = 5 * time.Second

// Client is a typed client for one node's API.
type Client struct {
	base string
	hc   *http.Client
	// timeout is DefaultTimeout unless SetTimeout changed it.
	timeout time.Duration
}

// NewClient returns a client for the node whose API is at baseURL
// ("http://127.0.0.1:8001"). A nil hc uses a client with its own transport
// (never http.DefaultClient, which every package in a process shares) and
// a DialTimeout.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: DialTimeout}).DialContext,
			MaxIdleConnsPerHost: 16,
		}}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc, timeout: DefaultTimeout}
}

// SetTimeout replaces DefaultTimeout as the bound of calls whose context
// has no deadline; d must be positive. It returns c.
func (c *Client) SetTimeout(d time.Duration) *Client {
	if d > 0 {
		c.timeout = d
	}
	return c
}

// BaseURL returns the node's API address.
func (c *Client) BaseURL() string { return c.base }

// Publish posts body as a new message and returns its id.
func (c *Client) Publish(ctx context.Context, body string) (PublishResponse, error) {
	var res PublishResponse
	err := c.do(ctx, 0, http.MethodPost, "/messages", PublishRequest{Body: &body}, &res)
	return res, err
}

// Receipt returns the node's receipt of message id, waiting up to wait for
// it to arrive; ErrNotFound if it has not by then.
func (c *Client) Receipt(ctx context.Context, id string, wait time.Duration) (Receipt, error) {
	path := "/messages/" + url.PathEscape(id)
	if wait > 0 {
		path += "?wait=" + url.QueryEscape(wait.String())
	}
	var rc Receipt
	err := c.do(ctx, max(wait, 0), http.MethodGet, path, nil, &rc)
	return rc, err
}

// Recent returns up to limit receipts, newest first, without bodies.
func (c *Client) Recent(ctx context.Context, limit int) ([]Receipt, error) {
	var list []Receipt
	err := c.do(ctx, 0, http.MethodGet, "/messages?limit="+strconv.Itoa(limit), nil, &list)
	return list, err
}

// Peers returns the node's links.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var list []Peer
	err := c.do(ctx, 0, http.MethodGet, "/peers", nil, &list)
	return list, err
}

// Health returns the node's health record.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.do(ctx, 0, http.MethodGet, "/healthz", nil, &h)
	return h, err
}

// Load asks the node to publish a timed series of messages and returns when
// it has. Without a deadline in ctx, it waits DefaultTimeout past the
// schedule's length (loadDuration).
func (c *Client) Load(ctx context.Context, req LoadRequest) (LoadResult, error) {
	var res LoadResult
	err := c.do(ctx, loadDuration(req), http.MethodPost, "/load", req, &res)
	return res, err
}

// maxLoadWait caps loadDuration, so that no rate, however small, makes the
// bound overflow or vanish.
const maxLoadWait = 24 * time.Hour

// loadDuration is how long a load's schedule may take: Count/Rate, with
// the rate taken as at most 1,000 messages a second (full speed, Rate 0,
// included), which a node on a loaded machine can keep up, and the result
// capped at maxLoadWait.
func loadDuration(req LoadRequest) time.Duration {
	rate := req.Rate
	if !(rate > 0) || rate > 1000 {
		rate = 1000
	}
	secs := float64(max(req.Count, 0)) / rate
	if !(secs < maxLoadWait.Seconds()) {
		return maxLoadWait
	}
	return time.Duration(secs * float64(time.Second))
}

// StatusError is a non-2xx answer, with the message from its JSON body.
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Is makes a 404 match ErrNotFound.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// do makes one call. If ctx has no deadline, the call gets one: c.timeout
// plus extra, the time the server is expected to take by design.
func (c *Client) do(ctx context.Context, extra time.Duration, method, path string, in, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout+extra)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s%s: %w", method, c.base, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("%s %s%s: %w", method, c.base, path, &StatusError{Status: resp.StatusCode, Message: e.Error})
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s%s: decoding answer: %w", method, c.base, path, err)
	}
	// Drain so the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}
