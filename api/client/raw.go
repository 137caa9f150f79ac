package client

import (
	"context"
	"net/http"
	"net/url"
)

// Raw GETs a path of the controller (e.g. /v1/status, /v1/hosts/h1/flows)
// and returns the body; error statuses become an *Error.
func (c *Client) Raw(ctx context.Context, path string, query url.Values) ([]byte, error) {
	var b []byte
	err := c.do(ctx, http.MethodGet, path, query, nil, "", &b)
	return b, err
}
