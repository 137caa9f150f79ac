package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/openvpc/openvpc/model"
)

// Error codes of the JSON error body.
const (
	CodeInvalidArgument  = "invalid_argument"  // 400, 405, 413
	CodeNotFound         = "not_found"         // 404
	CodeConflict         = "conflict"          // 409
	CodeUnauthenticated  = "unauthenticated"   // 401
	CodePermissionDenied = "permission_denied" // 403
	CodeInternal         = "internal"          // 500
)

// Error is the JSON body of every error response.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names what is wrong: a JSON path into the request body
	// ("ip", "nics[2].ip") or, for an object not in the body,
	// `<kind> "<name>": <field>`.
	Field string `json:"field,omitempty"`
	// Details lists every problem when there are several (Field and
	// Message are the first one's).
	Details []Detail `json:"details,omitempty"`
}

// Detail is one of several problems.
type Detail struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflict(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeConflict, Field: field, Message: fmt.Sprintf(format, args...)}
}

func denied(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodePermissionDenied, Field: field, Message: fmt.Sprintf(format, args...)}
}

func internalError() *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error (details are in the controller log)"}
}

// withPrefix returns e with its field(s) placed under a JSON path prefix.
func (e *Error) withPrefix(prefix string) *Error {
	if prefix == "" {
		return e
	}
	c := *e
	c.Field = joinPath(prefix, e.Field)
	c.Details = nil
	for _, d := range e.Details {
		c.Details = append(c.Details, Detail{Field: joinPath(prefix, d.Field), Message: d.Message})
	}
	return &c
}

func joinPath(prefix, field string) string {
	switch {
	case field == "":
		return prefix
	case prefix == "":
		return field
	case strings.HasPrefix(field, "["):
		return prefix + field
	}
	return prefix + "." + field
}

// validationError carries model.FieldErrors found while validating a
// change, already checked to be about objects the caller may see.
type validationError struct {
	err   error
	paths map[ref]string // object → JSON path of it in the request body
}

func (e *validationError) Error() string { return e.err.Error() }
func (e *validationError) Unwrap() error { return e.err }

// errUnchanged aborts a Backend.Update whose change is a no-op.
var errUnchanged = errors.New("api: nothing to change")

// toError maps any error to the API error to send.
func (s *server) toError(err error) *Error {
	var e *Error
	var ve *validationError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &ve):
		return fieldErrors(model.FieldErrors(ve.err), ve.paths)
	case errors.As(err, &mbe):
		return tooLarge(mbe.Limit)
	case errors.Is(err, ErrConflict):
		return conflict("", "%s", ErrConflict.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "request cancelled or timed out"}
	}
	// Anything else, including FieldErrors that the backend's own Build
	// found although ours passed, is unexpected and may name objects of
	// other accounts: log it, do not show it.
	return internalError()
}

func tooLarge(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeInvalidArgument, Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

// fieldErrors turns validation errors into one 400 error listing them all.
func fieldErrors(fes []*model.FieldError, paths map[ref]string) *Error {
	if len(fes) == 0 {
		return internalError()
	}
	out := &Error{Status: http.StatusBadRequest, Code: CodeInvalidArgument}
	var msgs []string
	for _, fe := range fes {
		d := Detail{Field: fieldPath(fe, paths), Message: fe.Error()}
		out.Details = append(out.Details, d)
		msgs = append(msgs, d.Message)
	}
	out.Field = out.Details[0].Field
	out.Message = strings.Join(msgs, "; ")
	if len(out.Details) == 1 {
		out.Details = nil
	}
	return out
}

// fieldPath is the JSON path of a FieldError's field in the request body
// when the object is in it, else `<kind> "<name>": <field>`.
func fieldPath(fe *model.FieldError, paths map[ref]string) string {
	if p, ok := paths[ref{fe.Kind, fe.Name}]; ok {
		return joinPath(p, fe.Field)
	}
	if fe.Name == "" {
		return fmt.Sprintf("%s: %s", fe.Kind, fe.Field)
	}
	return fmt.Sprintf("%s %q: %s", fe.Kind, fe.Name, fe.Field)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client may be gone; nothing to do about it
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, e)
}
