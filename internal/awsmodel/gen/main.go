// Command gen generates Go API types, enums, validation and an operation
// dispatcher from an official AWS service model (botocore's service-2.json).
//
// Usage (normally through `go generate ./internal/awsmodel`):
//
//	go run ./internal/awsmodel/gen -models ../shared/aws-models -service ecs -pkg ecstypes -out internal/awsmodel/ecstypes
//
// Output is deterministic: shapes, members and enum values come out in a
// sorted or model order, so regenerating an unchanged model changes nothing.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type model struct {
	Metadata struct {
		APIVersion     string `json:"apiVersion"`
		Protocol       string `json:"protocol"`
		TargetPrefix   string `json:"targetPrefix"`
		ServiceID      string `json:"serviceId"`
		SigningName    string `json:"signingName"`
		EndpointPrefix string `json:"endpointPrefix"`
		// XMLNamespace is a string in Query models ({"uri": …} in REST-XML ones).
		XMLNamespace json.RawMessage `json:"xmlNamespace"`
	} `json:"metadata"`
	Operations map[string]operation `json:"operations"`
	Shapes     map[string]*shape    `json:"shapes"`
}

type operation struct {
	Name   string `json:"name"`
	Input  *ref   `json:"input"`
	Output *ref   `json:"output"`
	Errors []ref  `json:"errors"`
	Doc    string `json:"documentation"`
}

type ref struct {
	Shape string `json:"shape"`
	Box   bool   `json:"box"`
	Doc   string `json:"documentation"`
	// LocationName is the wire name for members that differ from their Go name (query/XML protocols).
	LocationName string `json:"locationName"`
	// ResultWrapper names the element an operation's output is wrapped in
	// (Query protocol), e.g. DescribeLoadBalancersResult.
	ResultWrapper string `json:"resultWrapper"`
	// Flattened drops a Query list's or map's member/entry level.
	Flattened bool `json:"flattened"`
}

type shape struct {
	Type      string          `json:"type"`
	Members   map[string]*ref `json:"members"`
	Required  []string        `json:"required"`
	Member    *ref            `json:"member"`
	Key       *ref            `json:"key"`
	Value     *ref            `json:"value"`
	Enum      []string        `json:"enum"`
	Min       *float64        `json:"min"`
	Max       *float64        `json:"max"`
	Pattern   string          `json:"pattern"`
	Box       bool            `json:"box"`
	Sensitive bool            `json:"sensitive"`
	Exception bool            `json:"exception"`
	Fault     bool            `json:"fault"`
	Document  bool            `json:"document"`
	Flattened bool            `json:"flattened"`
	Doc       string          `json:"documentation"`
	Error     *struct {
		// Code is the wire error code when it differs from the shape's
		// name (Query models: LoadBalancerNotFoundException is sent as
		// LoadBalancerNotFound).
		Code           string `json:"code"`
		HTTPStatusCode int    `json:"httpStatusCode"`
	} `json:"error"`
	// memberOrder keeps the model's member order for deterministic output.
	memberOrder []string
}

func main() {
	var (
		models  = flag.String("models", "../shared/aws-models", "directory holding the botocore models, one folder per service")
		service = flag.String("service", "", "service folder name, e.g. ecs")
		pkg     = flag.String("pkg", "", "Go package name of the output, e.g. ecstypes")
		out     = flag.String("out", "", "output directory")
	)
	flag.Parse()
	if *service == "" || *pkg == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "gen: -service, -pkg and -out are required")
		os.Exit(2)
	}
	if err := run(filepath.Join(*models, *service, "service-2.json"), *pkg, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(path, pkg, out string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	m, err := parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	g := &generator{m: m, pkg: pkg, outputs: map[string]bool{}, inputs: map[string]bool{}}
	if err := g.checkQuery(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	g.prepare()
	files := map[string]func() []byte{
		"shapes.go":     g.shapes,
		"enums.go":      g.enums,
		"validate.go":   g.validate,
		"operations.go": g.operations,
		"errors.go":     g.errors,
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		src := files[name]()
		formatted, err := format.Source(src)
		if err != nil {
			return fmt.Errorf("formatting %s: %w\n%s", name, err, src)
		}
		if err := os.WriteFile(filepath.Join(out, name), formatted, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// parse decodes the model, keeping each structure's member order.
func parse(raw []byte) (*model, error) {
	var m model
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	var orders struct {
		Shapes map[string]struct {
			Members orderedKeys `json:"members"`
		} `json:"shapes"`
	}
	if err := json.Unmarshal(raw, &orders); err != nil {
		return nil, err
	}
	for name, s := range m.Shapes {
		s.memberOrder = orders.Shapes[name].Members
	}
	return &m, nil
}

// orderedKeys decodes the keys of a JSON object in document order.
type orderedKeys []string

func (o *orderedKeys) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		*o = append(*o, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

type generator struct {
	m       *model
	pkg     string
	outputs map[string]bool // structures that are operation outputs
	inputs  map[string]bool
	// patterns maps a pattern to the name of its compiled variable.
	patterns map[string]string
}

func (g *generator) prepare() {
	for _, op := range g.m.Operations {
		if op.Output != nil {
			g.outputs[op.Output.Shape] = true
		}
		if op.Input != nil {
			g.inputs[op.Input.Shape] = true
		}
	}
	g.patterns = map[string]string{}
	var pats []string
	for _, name := range g.sortedShapes() {
		if p := g.m.Shapes[name].Pattern; p != "" {
			if _, ok := g.patterns[p]; !ok {
				g.patterns[p] = ""
				pats = append(pats, p)
			}
		}
	}
	for i, p := range pats {
		g.patterns[p] = fmt.Sprintf("pattern%d", i)
	}
}

func (g *generator) sortedShapes() []string {
	names := make([]string, 0, len(g.m.Shapes))
	for n := range g.m.Shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (g *generator) sortedOps() []string {
	names := make([]string, 0, len(g.m.Operations))
	for n := range g.m.Operations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (g *generator) header(b *bytes.Buffer, imports ...string) {
	fmt.Fprintf(b, "// Code generated by internal/awsmodel/gen from the %s %s model. DO NOT EDIT.\n\n", g.m.Metadata.ServiceID, g.m.Metadata.APIVersion)
	fmt.Fprintf(b, "package %s\n\n", g.pkg)
	if len(imports) > 0 {
		b.WriteString("import (\n")
		for _, im := range imports {
			fmt.Fprintf(b, "\t%q\n", im)
		}
		b.WriteString(")\n\n")
	}
}

const runtimeImport = "github.com/berthdev/berth/internal/awsmodel"

// isEnum reports whether a string shape is an enum, which becomes a named Go type.
func (g *generator) isEnum(name string) bool {
	s := g.m.Shapes[name]
	return s.Type == "string" && len(s.Enum) > 0
}

// goType is the Go type of a member that refers to shape name.
func (g *generator) goType(r *ref) string {
	s := g.m.Shapes[r.Shape]
	// Query models carry no box traits, yet an absent number or boolean
	// differs from 0 or false there (ModifyTargetGroup without
	// HealthCheckEnabled keeps the setting), so every scalar member of a
	// Query model is a pointer.
	box := s.Box || r.Box || g.isQuery()
	switch s.Type {
	case "structure":
		if s.Document {
			return "awsmodel.Document"
		}
		return "*" + r.Shape
	case "list":
		return "[]" + g.elemType(s.Member)
	case "map":
		return "map[" + g.elemType(s.Key) + "]" + g.elemType(s.Value)
	case "string":
		if g.isEnum(r.Shape) {
			return r.Shape
		}
		return "string"
	case "integer":
		return ptr(box) + "int32"
	case "long":
		return ptr(box) + "int64"
	case "double", "float":
		return ptr(box) + "float64"
	case "boolean":
		return ptr(box) + "bool"
	case "timestamp":
		return "*awsmodel.Time"
	case "blob":
		return "[]byte"
	}
	panic("unknown shape type " + s.Type + " for " + r.Shape)
}

// elemType is the Go type of a list element or map key/value: structures by value.
func (g *generator) elemType(r *ref) string {
	s := g.m.Shapes[r.Shape]
	switch s.Type {
	case "structure":
		if s.Document {
			return "awsmodel.Document"
		}
		return r.Shape
	case "integer":
		return "int32"
	case "long":
		return "int64"
	case "double", "float":
		return "float64"
	case "boolean":
		return "bool"
	case "timestamp":
		return "awsmodel.Time"
	}
	return g.goType(r)
}

func ptr(b bool) string {
	if b {
		return "*"
	}
	return ""
}

// exported turns a model member name into a Go field name.
func exported(name string) string {
	if name == "" {
		return name
	}
	out := strings.ToUpper(name[:1]) + name[1:]
	return goIdent.ReplaceAllString(out, "_")
}

var goIdent = regexp.MustCompile(`[^A-Za-z0-9_]`)

var (
	tagRE   = regexp.MustCompile(`<[^>]*>`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// firstSentence turns model HTML documentation into one plain sentence.
func firstSentence(doc string) string {
	s := html.UnescapeString(tagRE.ReplaceAllString(doc, " "))
	s = strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}

func comment(b *bytes.Buffer, indent, name, what, doc string) {
	line := fmt.Sprintf("%s is %s.", name, what)
	if d := firstSentence(doc); d != "" {
		line = fmt.Sprintf("%s is %s: %s", name, what, d)
	}
	fmt.Fprintf(b, "%s// %s\n", indent, strings.ReplaceAll(line, "\n", " "))
}

func (g *generator) shapes() []byte {
	var b bytes.Buffer
	g.header(&b, runtimeImport)
	b.WriteString("var _ awsmodel.Time\n\n")
	for _, name := range g.sortedShapes() {
		s := g.m.Shapes[name]
		if s.Type != "structure" || s.Document || s.Exception {
			continue
		}
		comment(&b, "", name, "the "+g.m.Metadata.ServiceID+" "+name+" shape", s.Doc)
		fmt.Fprintf(&b, "type %s struct {\n", name)
		for _, mn := range s.memberOrder {
			r := s.Members[mn]
			typ := g.goType(r)
			tag := mn
			if r.LocationName != "" {
				tag = r.LocationName
			}
			// Lists and maps use omitzero: nil (absent) is left out, while an
			// empty list is sent as [] the way AWS sends it. Unboxed scalars
			// are always sent, and so are the lists of operation outputs.
			omit := ",omitempty"
			ms := g.m.Shapes[r.Shape]
			scalar := !strings.HasPrefix(typ, "*") && !strings.HasPrefix(typ, "[]") && !strings.HasPrefix(typ, "map[") && ms.Type != "string" && !ms.Document
			switch {
			case scalar || (g.outputs[name] && (ms.Type == "list" || ms.Type == "map")):
				omit = ""
			case ms.Type == "list" || ms.Type == "map" || ms.Type == "blob":
				omit = ",omitzero"
			}
			if d := firstSentence(r.Doc); d != "" {
				fmt.Fprintf(&b, "\t// %s\n", d)
			}
			if ms.Sensitive || s.Sensitive {
				b.WriteString("\t// Sensitive: never logged.\n")
			}
			fmt.Fprintf(&b, "\t%s %s `json:\"%s%s\"`\n", exported(mn), typ, tag, omit)
		}
		b.WriteString("}\n\n")
		if g.outputs[name] {
			g.fillEmpty(&b, name, s)
		}
	}
	return b.Bytes()
}

// fillEmpty writes FillEmpty for an output shape, so its lists and maps are
// sent as [] and {} rather than null, as AWS does.
func (g *generator) fillEmpty(b *bytes.Buffer, name string, s *shape) {
	fmt.Fprintf(b, "// FillEmpty sets nil lists and maps to empty ones, as AWS sends them.\n")
	fmt.Fprintf(b, "func (s *%s) FillEmpty() {\n", name)
	for _, mn := range s.memberOrder {
		r := s.Members[mn]
		ms := g.m.Shapes[r.Shape]
		if ms.Type == "list" || ms.Type == "map" {
			f := exported(mn)
			fmt.Fprintf(b, "\tif s.%s == nil {\n\t\ts.%s = %s{}\n\t}\n", f, f, g.goType(r))
		}
	}
	b.WriteString("}\n\n")
}

func (g *generator) enums() []byte {
	var b bytes.Buffer
	g.header(&b)
	for _, name := range g.sortedShapes() {
		if !g.isEnum(name) {
			continue
		}
		s := g.m.Shapes[name]
		comment(&b, "", name, "an enum of the "+g.m.Metadata.ServiceID+" model", s.Doc)
		fmt.Fprintf(&b, "type %s string\n\n", name)
		b.WriteString("// The values of " + name + ".\n")
		b.WriteString("const (\n")
		used := map[string]bool{}
		for _, v := range s.Enum {
			c := name + enumSuffix(v)
			for used[c] {
				c += "_"
			}
			used[c] = true
			fmt.Fprintf(&b, "\t%s %s = %q\n", c, name, v)
		}
		b.WriteString(")\n\n")
		fmt.Fprintf(&b, "// %sValues lists every value of %s in model order.\n", name, name)
		fmt.Fprintf(&b, "var %sValues = []string{", name)
		for i, v := range s.Enum {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", v)
		}
		b.WriteString("}\n\n")
	}
	return b.Bytes()
}

var enumWord = regexp.MustCompile(`[A-Za-z0-9]+`)

// enumSuffix turns an enum value (FARGATE_SPOT, awsvpc, 1.4.0) into a Go
// identifier suffix (FargateSpot, Awsvpc, 1_4_0).
func enumSuffix(v string) string {
	words := enumWord.FindAllString(v, -1)
	if len(words) == 0 {
		return "Empty"
	}
	var b strings.Builder
	for i, w := range words {
		if w[0] >= '0' && w[0] <= '9' {
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteString(w)
			continue
		}
		if strings.ToUpper(w) == w {
			w = strings.ToLower(w)
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// validate writes a Validate method for every structure reachable from an
// operation input.
func (g *generator) validate() []byte {
	var b bytes.Buffer
	imports := []string{runtimeImport}
	if len(g.patterns) > 0 {
		imports = append(imports, "regexp")
	}
	g.header(&b, imports...)
	if len(g.patterns) > 0 {
		b.WriteString("var (\n")
		pats := make([]string, 0, len(g.patterns))
		for p := range g.patterns {
			pats = append(pats, p)
		}
		sort.Slice(pats, func(i, j int) bool { return g.patterns[pats[i]] < g.patterns[pats[j]] })
		for _, p := range pats {
			fmt.Fprintf(&b, "\t%s = awsmodel.MustCompile(%s)\n", g.patterns[p], strconv.Quote(p))
		}
		b.WriteString(")\n\nvar _ *regexp.Regexp\n\n")
	}
	reach := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		s := g.m.Shapes[name]
		if reach[name] {
			return
		}
		switch s.Type {
		case "structure":
			if s.Document {
				return
			}
			reach[name] = true
			for _, r := range s.Members {
				walk(r.Shape)
			}
		case "list":
			walk(s.Member.Shape)
		case "map":
			walk(s.Key.Shape)
			walk(s.Value.Shape)
		}
	}
	for in := range g.inputs {
		walk(in)
	}
	for _, name := range g.sortedShapes() {
		if !reach[name] {
			continue
		}
		s := g.m.Shapes[name]
		required := map[string]bool{}
		for _, r := range s.Required {
			required[r] = true
		}
		fmt.Fprintf(&b, "// Validate checks %s against the model's constraints.\n", name)
		fmt.Fprintf(&b, "func (s *%s) Validate(v *awsmodel.Validator) {\n", name)
		b.WriteString("\tif s == nil {\n\t\treturn\n\t}\n")
		for _, mn := range s.memberOrder {
			r := s.Members[mn]
			g.validateMember(&b, "s."+exported(mn), mn, r, required[mn], g.goType(r))
		}
		b.WriteString("}\n\n")
	}
	return b.Bytes()
}

func fnum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// validateMember writes the checks for one member expression expr of Go type typ.
func (g *generator) validateMember(b *bytes.Buffer, expr, name string, r *ref, required bool, typ string) {
	s := g.m.Shapes[r.Shape]
	q := strconv.Quote(name)
	isPtr := strings.HasPrefix(typ, "*")
	if required {
		switch {
		case isPtr || s.Type == "list" || s.Type == "map" || s.Type == "blob" || s.Document:
			fmt.Fprintf(b, "\tif %s == nil {\n\t\tv.Required(%s)\n\t}\n", expr, q)
		case s.Type == "string":
			fmt.Fprintf(b, "\tif %s == \"\" {\n\t\tv.Required(%s)\n\t}\n", expr, q)
		}
	}
	switch s.Type {
	case "string":
		if len(s.Enum) > 0 {
			fmt.Fprintf(b, "\tv.Enum(%s, string(%s), %sValues)\n", q, expr, r.Shape)
		}
		if s.Min != nil || s.Max != nil {
			fmt.Fprintf(b, "\tv.StringLen(%s, string(%s), %s, %s)\n", q, expr, optNum(s.Min, "0"), optNum(s.Max, "-1"))
		}
		if s.Pattern != "" {
			fmt.Fprintf(b, "\tv.Pattern(%s, string(%s), %s)\n", q, expr, g.patterns[s.Pattern])
		}
	case "integer", "long", "double", "float":
		if s.Min == nil && s.Max == nil {
			return
		}
		val := expr
		if isPtr {
			fmt.Fprintf(b, "\tif %s != nil {\n", expr)
			val = "*" + expr
		}
		fmt.Fprintf(b, "\tv.Range(%s, float64(%s), %s, %s, %t, %t)\n", q, val, optNum(s.Min, "0"), optNum(s.Max, "0"), s.Min != nil, s.Max != nil)
		if isPtr {
			b.WriteString("\t}\n")
		}
	case "structure":
		if s.Document {
			return
		}
		fmt.Fprintf(b, "\tif %s != nil {\n\t\tv.Enter(%s)\n\t\t%s.Validate(v)\n\t\tv.Leave()\n\t}\n", expr, q, expr)
	case "list":
		if s.Min != nil || s.Max != nil {
			fmt.Fprintf(b, "\tif %s != nil {\n\t\tv.ListLen(%s, len(%s), %s, %s)\n\t}\n", expr, q, expr, optNum(s.Min, "0"), optNum(s.Max, "-1"))
		}
		if g.needsCheck(s.Member.Shape, map[string]bool{}) {
			fmt.Fprintf(b, "\tif len(%s) > 0 {\n\t\tv.Enter(%s)\n\t\tfor i := range %s {\n\t\t\tv.EnterIndex(i)\n", expr, q, expr)
			elem := expr + "[i]"
			if g.m.Shapes[s.Member.Shape].Type == "structure" {
				fmt.Fprintf(b, "\t\t\t(&%s).Validate(v)\n", elem)
			} else {
				g.validateMember(b, elem, "", s.Member, false, g.elemType(s.Member))
			}
			b.WriteString("\t\t\tv.Leave()\n\t\t}\n\t\tv.Leave()\n\t}\n")
		}
	case "map":
		if s.Min != nil || s.Max != nil {
			fmt.Fprintf(b, "\tif %s != nil {\n\t\tv.ListLen(%s, len(%s), %s, %s)\n\t}\n", expr, q, expr, optNum(s.Min, "0"), optNum(s.Max, "-1"))
		}
		kc, vc := g.needsCheck(s.Key.Shape, map[string]bool{}), g.needsCheck(s.Value.Shape, map[string]bool{})
		if kc || vc {
			fmt.Fprintf(b, "\tif len(%s) > 0 {\n\t\tv.Enter(%s)\n\t\tfor k, x := range %s {\n\t\t\t_, _ = k, x\n\t\t\tv.EnterKey(string(k))\n", expr, q, expr)
			if kc {
				g.validateMember(b, "k", "", s.Key, false, g.elemType(s.Key))
			}
			if vc {
				if g.m.Shapes[s.Value.Shape].Type == "structure" {
					b.WriteString("\t\t\t(&x).Validate(v)\n")
				} else {
					g.validateMember(b, "x", "", s.Value, false, g.elemType(s.Value))
				}
			}
			b.WriteString("\t\t\tv.Leave()\n\t\t}\n\t\tv.Leave()\n\t}\n")
		}
	}
}

// needsCheck reports whether values of shape name carry any constraint.
func (g *generator) needsCheck(name string, seen map[string]bool) bool {
	if seen[name] {
		return false
	}
	seen[name] = true
	s := g.m.Shapes[name]
	switch s.Type {
	case "structure":
		return !s.Document
	case "list":
		return s.Min != nil || s.Max != nil || g.needsCheck(s.Member.Shape, seen)
	case "map":
		return s.Min != nil || s.Max != nil || g.needsCheck(s.Key.Shape, seen) || g.needsCheck(s.Value.Shape, seen)
	case "string":
		return len(s.Enum) > 0 || s.Min != nil || s.Max != nil || s.Pattern != ""
	}
	return s.Min != nil || s.Max != nil
}

func optNum(f *float64, def string) string {
	if f == nil {
		return def
	}
	return fnum(*f)
}

func (g *generator) ioType(r *ref) string {
	if r == nil {
		return "awsmodel.Empty"
	}
	return r.Shape
}

func (g *generator) operations() []byte {
	var b bytes.Buffer
	if g.isQuery() {
		g.header(&b, "context", "net/url", runtimeImport)
	} else {
		g.header(&b, "context", runtimeImport)
	}
	svc := g.m.Metadata.ServiceID
	fmt.Fprintf(&b, "// ServiceID is the model's service id.\nconst ServiceID = %q\n\n", svc)
	fmt.Fprintf(&b, "// TargetPrefix is the X-Amz-Target prefix of the JSON protocol (empty for other protocols).\nconst TargetPrefix = %q\n\n", g.m.Metadata.TargetPrefix)
	fmt.Fprintf(&b, "// SigningName is the SigV4 service name clients sign with.\nconst SigningName = %q\n\n", signingName(g.m))
	fmt.Fprintf(&b, "// Protocol is the model's wire protocol.\nconst Protocol = %q\n\n", g.m.Metadata.Protocol)
	fmt.Fprintf(&b, "// Handler is the server side of the %s API: one method per operation.\n", svc)
	b.WriteString("// Embed Unimplemented to answer the operations not (yet) provided.\n")
	b.WriteString("type Handler interface {\n")
	for _, name := range g.sortedOps() {
		op := g.m.Operations[name]
		comment(&b, "\t", name, "the "+name+" operation", op.Doc)
		fmt.Fprintf(&b, "\t%s(ctx context.Context, in *%s) (*%s, error)\n", name, g.ioType(op.Input), g.ioType(op.Output))
	}
	b.WriteString("}\n\n")
	b.WriteString("// Unimplemented answers every operation with an *awsmodel.NotImplementedError.\n")
	b.WriteString("type Unimplemented struct{}\n\n")
	for _, name := range g.sortedOps() {
		op := g.m.Operations[name]
		fmt.Fprintf(&b, "// %s answers that the operation is not implemented.\n", name)
		fmt.Fprintf(&b, "func (Unimplemented) %s(context.Context, *%s) (*%s, error) {\n", name, g.ioType(op.Input), g.ioType(op.Output))
		fmt.Fprintf(&b, "\treturn nil, &awsmodel.NotImplementedError{Service: ServiceID, Operation: %q}\n}\n\n", name)
	}
	b.WriteString("// Operations lists every operation of the model, sorted.\n")
	b.WriteString("var Operations = []string{\n")
	for _, name := range g.sortedOps() {
		fmt.Fprintf(&b, "\t%q,\n", name)
	}
	b.WriteString("}\n\n")
	b.WriteString("// Dispatch decodes body as the input of operation op, validates it, calls\n")
	b.WriteString("// h and returns the output to encode.\n")
	b.WriteString("func Dispatch(ctx context.Context, h Handler, op string, body []byte) (any, error) {\n")
	b.WriteString("\tswitch op {\n")
	for _, name := range g.sortedOps() {
		fmt.Fprintf(&b, "\tcase %q:\n\t\treturn awsmodel.Call(ctx, body, h.%s)\n", name, name)
	}
	b.WriteString("\t}\n")
	b.WriteString("\treturn nil, &awsmodel.UnknownOperationError{Service: ServiceID, Operation: op}\n}\n")
	if g.isQuery() {
		g.queryOperations(&b)
	}
	return b.Bytes()
}

func signingName(m *model) string {
	if m.Metadata.SigningName != "" {
		return m.Metadata.SigningName
	}
	return m.Metadata.EndpointPrefix
}

// isQuery reports whether the model speaks the AWS Query protocol.
func (g *generator) isQuery() bool { return g.m.Metadata.Protocol == "query" }

// checkQuery refuses a Query model with traits the runtime's Query codec
// (awsmodel.DecodeQuery, EncodeQueryXML) does not follow: flattened lists
// and maps, and renamed list members or map keys and values. The generated
// types name members by their json tags, which cannot carry those.
func (g *generator) checkQuery() error {
	if !g.isQuery() {
		return nil
	}
	for _, name := range g.sortedShapes() {
		s := g.m.Shapes[name]
		if s.Flattened {
			return fmt.Errorf("shape %s is flattened, which the Query codec does not support", name)
		}
		for _, r := range []*ref{s.Member, s.Key, s.Value} {
			if r != nil && r.LocationName != "" {
				return fmt.Errorf("shape %s renames its members (%s), which the Query codec does not support", name, r.LocationName)
			}
		}
		for _, mn := range s.memberOrder {
			if s.Members[mn].Flattened {
				return fmt.Errorf("member %s.%s is flattened, which the Query codec does not support", name, mn)
			}
		}
	}
	return nil
}

// xmlNamespace is the model's XML namespace URI.
func (g *generator) xmlNamespace() string {
	var uri string
	if json.Unmarshal(g.m.Metadata.XMLNamespace, &uri) == nil {
		return uri
	}
	var obj struct {
		URI string `json:"uri"`
	}
	_ = json.Unmarshal(g.m.Metadata.XMLNamespace, &obj)
	return obj.URI
}

// queryOperations writes what a Query-protocol front door needs besides
// Dispatch: the API version and XML namespace, each operation's result
// wrapper, and DispatchQuery.
func (g *generator) queryOperations(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n// APIVersion is the Version a Query request must carry.\nconst APIVersion = %q\n\n", g.m.Metadata.APIVersion)
	fmt.Fprintf(b, "// XMLNamespace is the namespace of the API's XML replies.\nconst XMLNamespace = %q\n\n", g.xmlNamespace())
	b.WriteString("// ResultWrapper is the element operation op's reply wraps its output in,\n")
	b.WriteString("// or \"\" for an operation without output (or not in the model).\n")
	b.WriteString("func ResultWrapper(op string) string {\n\tswitch op {\n")
	for _, name := range g.sortedOps() {
		if out := g.m.Operations[name].Output; out != nil && out.ResultWrapper != "" {
			fmt.Fprintf(b, "\tcase %q:\n\t\treturn %q\n", name, out.ResultWrapper)
		}
	}
	b.WriteString("\t}\n\treturn \"\"\n}\n\n")
	b.WriteString("// DispatchQuery decodes the form of an AWS Query request as the input of\n")
	b.WriteString("// operation op, validates it, calls h and returns the output to encode.\n")
	b.WriteString("func DispatchQuery(ctx context.Context, h Handler, op string, form url.Values) (any, error) {\n")
	b.WriteString("\tswitch op {\n")
	for _, name := range g.sortedOps() {
		fmt.Fprintf(b, "\tcase %q:\n\t\treturn awsmodel.CallQuery(ctx, form, h.%s)\n", name, name)
	}
	b.WriteString("\t}\n")
	b.WriteString("\treturn nil, &awsmodel.UnknownOperationError{Service: ServiceID, Operation: op}\n}\n")
}

// errors writes a constructor for every exception shape.
func (g *generator) errors() []byte {
	var b bytes.Buffer
	g.header(&b, runtimeImport)
	for _, name := range g.sortedShapes() {
		s := g.m.Shapes[name]
		if !s.Exception {
			continue
		}
		status := 400
		if s.Error != nil && s.Error.HTTPStatusCode != 0 {
			status = s.Error.HTTPStatusCode
		} else if s.Fault {
			status = 500
		}
		code := name
		if s.Error != nil && s.Error.Code != "" {
			code = s.Error.Code
		}
		what := "an error of the model's " + name + " type"
		if code != name {
			what += " (code " + code + ")"
		}
		comment(&b, "", "New"+name, what, s.Doc)
		fmt.Fprintf(&b, "func New%s(format string, args ...any) *awsmodel.APIError {\n", name)
		fmt.Fprintf(&b, "\treturn awsmodel.NewAPIError(%q, %d, format, args...)\n}\n\n", code, status)
	}
	return b.Bytes()
}
