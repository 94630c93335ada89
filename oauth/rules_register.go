package oauth

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcptap/mcptap"
)

func ruleRegisterRejected(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopRegister || x.status() < 400 || x.status() >= 500 || !t.complete(x) {
		return nil
	}
	var e oauthex.ClientRegistrationError
	m := jsonObject(x.ex.RespBody)
	e.ErrorCode, e.ErrorDescription = str(m, "error"), str(m, "error_description")
	var req oauthex.ClientRegistrationMetadata
	_ = jsonUnmarshal(x.ex.ReqBody, &req)
	refused := ""
	for _, u := range req.RedirectURIs {
		if strings.Contains(e.ErrorDescription, u) {
			refused = u
		}
	}
	got := strings.TrimSpace(e.ErrorCode + " " + e.ErrorDescription)
	if got == "" {
		got = fmt.Sprintf("%d %s", x.status(), truncate(string(x.ex.RespBody), 120))
	}
	d := fmt.Sprintf("Registration answered %d (%s). The client asked for redirect_uris %v.", x.status(), got, req.RedirectURIs)
	if refused != "" {
		d += fmt.Sprintf(" Refused URI: %s.", refused)
	}
	return []hit{{detail: d, evidence: []mcptap.Evidence{ev(x, "body.redirect_uris", "accepted", strings.Join(req.RedirectURIs, " "), got)}}}
}

var unknownClientRE = regexp.MustCompile(`(?i)(unknown|unrecognized|unrecognised|no such)[ _-]?client|client[ _-]?(id )?(not found|unknown|does not exist|is not registered)`)

func ruleClientUnknown(t *Tracker, x *exInfo) []hit {
	if (x.kind != mcptap.HopAuthorize && x.kind != mcptap.HopToken) || x.status() < 400 || !t.complete(x) {
		return nil
	}
	body := string(x.ex.RespBody)
	if x.kind == mcptap.HopToken && !strings.Contains(body, "invalid_client") {
		return nil
	}
	if !unknownClientRE.MatchString(body) {
		return nil
	}
	cid := x.q.Get("client_id")
	if x.kind == mcptap.HopToken {
		cid = tokenClientID(x)
	}
	reg := "no registration of it was seen in this session"
	if r := t.regs[cid]; r != nil {
		reg = "it was registered at " + r.at().Format("15:04:05") + " in this session (the server forgot it: restart, in-memory store?)"
	}
	return []hit{{detail: fmt.Sprintf("The authorization server answered %d to client_id %q: %s. %s.", x.status(), cid, truncate(body, 160), reg),
		evidence: []mcptap.Evidence{ev(x, "query.client_id", "a registered client", cid, truncate(body, 160))}}}
}
