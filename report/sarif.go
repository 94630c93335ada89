package report

import (
	"encoding/json"
	"io"
	"net/url"
	"strings"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// SARIF 2.1.0 (OASIS): one run, one reportingDescriptor per catalogue rule
// with its fix as help, one result per finding located at the exchange that
// shows it. Only the members mcptap fills are declared.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool       sarifTool      `json:"tool"`
	Results    []sarifResult  `json:"results"`
	Properties map[string]any `json:"properties,omitempty"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	ShortDescription     sarifText      `json:"shortDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID     string          `json:"ruleId"`
	RuleIndex  int             `json:"ruleIndex"`
	Level      string          `json:"level"`
	Message    sarifText       `json:"message"`
	Locations  []sarifLocation `json:"locations,omitempty"`
	Properties map[string]any  `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
	Message          *sarifText     `json:"message,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName,omitempty"`
	Kind               string `json:"kind"`
}

// sarifLevel maps a severity: findings at or above the fail-on severity are
// errors (what a CI gate fails on), other warnings are warnings, info is a note.
func (r Report) sarifLevel(sev mcptap.Severity) string {
	switch {
	case r.fails(sev):
		return "error"
	case sev == mcptap.SevWarning:
		return "warning"
	}
	return "note"
}

func (r Report) writeSARIF(w io.Writer) error {
	cat := oauth.Catalogue()
	index := make(map[string]int, len(cat))
	rules := make([]sarifRule, 0, len(cat))
	for _, ri := range cat {
		index[string(ri.ID)] = len(rules)
		rules = append(rules, sarifRule{ID: string(ri.ID), ShortDescription: sarifText{ri.Title},
			Help: sarifText{"Fix: " + ri.Fix}, DefaultConfiguration: sarifConfig{r.sarifLevel(ri.Severity)},
			Properties: map[string]any{"fault": ri.Fault, "severity": ri.Severity}})
	}
	// Where each exchange was: hops carry their (redacted) URL.
	where := map[string]Hop{}
	for _, f := range r.Flows {
		for _, h := range f.Hops {
			where[h.Exchange] = h
		}
	}
	results := make([]sarifResult, 0, len(r.Findings))
	for _, fd := range r.Findings {
		i, ok := index[fd.Rule]
		if !ok { // a finding of a rule the catalogue does not list: describe it once
			i = len(rules)
			index[fd.Rule] = i
			rules = append(rules, sarifRule{ID: fd.Rule, ShortDescription: sarifText{fd.Title},
				Help: sarifText{"Fix: " + fd.Fix}, DefaultConfiguration: sarifConfig{r.sarifLevel(fd.Severity)},
				Properties: map[string]any{"fault": fd.Fault, "severity": fd.Severity}})
		}
		msg := fd.Title
		if fd.Detail != "" {
			msg += ". " + fd.Detail
		}
		res := sarifResult{RuleID: fd.Rule, RuleIndex: i, Level: r.sarifLevel(fd.Severity), Message: sarifText{msg},
			Properties: map[string]any{"flow": fd.Flow, "fault": fd.Fault, "severity": fd.Severity, "exchanges": fd.Exchanges, "finding": fd.ID}}
		for _, id := range fd.Exchanges {
			loc := sarifLocation{LogicalLocations: []sarifLogical{{Name: id, FullyQualifiedName: "session/" + r.Session.ID + "/exchange/" + id, Kind: "exchange"}}}
			if h, ok := where[id]; ok && h.URL != "" {
				if u := locationURI(h.URL); u != "" {
					loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: u}}
				}
				loc.Message = &sarifText{strings.TrimSpace(h.Method + " " + string(h.Kind))}
			}
			res.Locations = append(res.Locations, loc)
		}
		results = append(results, res)
	}
	doc := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool:    sarifTool{Driver: sarifDriver{Name: "mcptap", InformationURI: "https://github.com/mcptap/mcptap", Rules: rules}},
			Results: results,
			Properties: map[string]any{"session": r.Session.ID, "source": r.Session.Source, "exchanges": r.Session.Exchanges,
				"redacted": r.Redacted},
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// locationURI is a hop's URL without its query and fragment (which carry
// codes and states, redacted or not, and say nothing about where): "" when it
// is no absolute URL.
func locationURI(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}
