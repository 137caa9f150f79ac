package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"unicode/utf8"
)

// TokenRequest is the body of POST /v1/tokens: a token for Account, or an
// admin token (Admin true, no account).
type TokenRequest struct {
	Account     string `json:"account,omitempty"`
	Admin       bool   `json:"admin,omitempty"`
	Description string `json:"description,omitempty"`
}

// NewToken is the response to POST /v1/tokens; Secret is never shown again.
type NewToken struct {
	ID          string `json:"id"`
	Secret      string `json:"secret"`
	Account     string `json:"account,omitempty"`
	Admin       bool   `json:"admin"`
	Description string `json:"description,omitempty"`
}

const maxDescription = 256

func (s *server) createToken(w http.ResponseWriter, r *http.Request, pr Principal) error {
	var req TokenRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return err
	}
	switch {
	case req.Admin && req.Account != "":
		return invalid("account", "must be empty for an admin token")
	case !req.Admin && req.Account == "":
		return invalid("account", "is required (or set admin to true for an admin token)")
	case len(req.Description) > maxDescription:
		return invalid("description", "is longer than %d bytes", maxDescription)
	case !utf8.ValidString(req.Description):
		return invalid("description", "is not valid UTF-8")
	}
	if req.Account != "" {
		p, _, err := s.b.Policy(r.Context())
		if err != nil {
			return fmt.Errorf("read policy: %w", err)
		}
		if accountKind.find(p, req.Account) < 0 {
			return invalid("account", "account %q does not exist", req.Account)
		}
	}
	id, secret, err := s.b.CreateToken(r.Context(), req.Account, req.Description)
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	s.log.WithField("token", id).WithField("account", req.Account).WithField("admin", req.Admin).
		WithField("by", pr.TokenID).Info("api: token created")
	w.Header().Set("Location", "/v1/tokens/"+url.PathEscape(id))
	writeJSON(w, http.StatusCreated, NewToken{ID: id, Secret: secret, Account: req.Account, Admin: req.Admin, Description: req.Description})
	return nil
}

func (s *server) tokens(r *http.Request) ([]TokenInfo, error) {
	toks, err := s.b.ListTokens(r.Context())
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	sort.Slice(toks, func(i, j int) bool { return toks[i].ID < toks[j].ID })
	return toks, nil
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request, pr Principal) error {
	toks, err := s.tokens(r)
	if err != nil {
		return err
	}
	if toks == nil {
		toks = []TokenInfo{}
	}
	writeJSON(w, http.StatusOK, listResponse[TokenInfo]{Items: toks})
	return nil
}

func (s *server) getToken(w http.ResponseWriter, r *http.Request, pr Principal) error {
	id := r.PathValue("id")
	toks, err := s.tokens(r)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.ID == id {
			writeJSON(w, http.StatusOK, t)
			return nil
		}
	}
	return notFound("token %q not found", id)
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, pr Principal) error {
	id := r.PathValue("id")
	if err := s.b.RevokeToken(r.Context(), id); err != nil {
		if errors.Is(err, ErrNotFound) {
			return notFound("token %q not found", id)
		}
		return fmt.Errorf("revoke token: %w", err)
	}
	s.log.WithField("token", id).WithField("by", pr.TokenID).Info("api: token revoked")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
