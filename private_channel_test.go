package reauth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestNoPrivateChannel: the built-in schemes reach an AuthRequest through
// its exported API only, as a scheme outside the package must (DESIGN.md,
// The seam). It fails if a scheme's code selects an unexported field or
// method of an *AuthRequest.
func TestNoPrivateChannel(t *testing.T) {
	// The files of the schemes, and for credentials.go the scheme types in it.
	files := []string{"credentials.go", "digest_credentials.go", "oauth2.go", "stepup.go", "tokenflight.go", "registry.go", "registrytoken.go"}
	schemeTypes := map[string]bool{"basicCredentials": true, "bearerCredentials": true, "preemptive": true,
		"digestCredentials": true, "oauth2Credentials": true, "registryCredentials": true}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			if fn.Recv != nil {
				if !schemeTypes[recvType(fn.Recv.List[0].Type)] {
					continue
				}
			} else if name == "credentials.go" {
				continue // the AuthRequest's own helpers
			}
			// The names of this function's *AuthRequest parameters.
			params := map[string]bool{}
			for _, p := range fn.Type.Params.List {
				if star, ok := p.Type.(*ast.StarExpr); ok {
					if id, ok := star.X.(*ast.Ident); ok && id.Name == "AuthRequest" {
						for _, n := range p.Names {
							params[n.Name] = true
						}
					}
				}
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && params[id.Name] && !ast.IsExported(sel.Sel.Name) {
					t.Errorf("%s: %s uses AuthRequest.%s, which a scheme outside the package cannot", fset.Position(sel.Pos()), fn.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
}

func recvType(e ast.Expr) string {
	if star, ok := e.(*ast.StarExpr); ok {
		e = star.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
